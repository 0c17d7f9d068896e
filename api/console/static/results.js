/** Drawing results: emotion bars, sentences coloured by valence, transcripts that follow a player. */
import {formatTime, h, percent} from "./dom.js";

const TOP_LABELS = 5;

/** The valence group a result leans to, for its colour class. */
export function leaning(emotion) {
  const groups = (emotion.valence && emotion.valence.groups) || {};
  let best = "neutral";
  for (const group of ["positive", "negative", "ambiguous", "neutral"]) {
    if ((groups[group] || 0) > (groups[best] || 0)) best = group;
  }
  return best;
}

export function topLabels(emotion, count = TOP_LABELS) {
  return Object.entries(emotion.probabilities || {}).sort((a, b) => b[1] - a[1]).slice(0, count);
}

export function emotionBars(emotion) {
  const list = h("ul", {class: "bars", "aria-label": "Most probable labels"});
  for (const [label, probability] of topLabels(emotion)) {
    const id = `bar-${label}-${Math.random().toString(36).slice(2, 8)}`;
    list.append(h("li", {class: "bar", dataset: {label, probability: String(probability)}},
      h("label", {for: id}, label),
      h("meter", {id, min: 0, max: 1, value: probability}),
      h("span", {class: "value"}, percent(probability))));
  }
  const valence = emotion.valence ? emotion.valence.score : null;
  return h("div", {class: "emotion", dataset: {topEmotion: emotion.top_emotion || ""}},
    list,
    valence === null ? null : h("p", {class: "valence"}, `Valence score of the model's outputs: ${valence.toFixed(2)} `
      + "(−1 only negative labels, 1 only positive ones)."));
}

export function sentenceView(emotion) {
  if (!emotion.sentences) return null;
  const paragraph = h("p", {class: "sentences", "aria-label": "Sentences coloured by the valence the model read"});
  for (const sentence of emotion.sentences) {
    const top = sentence.top_emotion || "";
    paragraph.append(h("span", {class: `sentence valence-${leaning(sentence)}`, title: top,
      dataset: {topEmotion: top}}, sentence.text), " ");
  }
  return h("div", {}, h("h4", {}, "Sentences"), paragraph, legend());
}

function legend() {
  return h("ul", {class: "legend", "aria-label": "Colour legend"},
    ["positive", "negative", "ambiguous", "neutral"].map((group) =>
      h("li", {class: `valence-${group}`}, group)));
}

/** The transcript, each segment with its top label; with ``audioUrl`` a player that highlights the
 * segment being heard. */
export function transcriptView(transcript, audioUrl) {
  const items = transcript.segments.map((segment) => h("li", {class: "segment", dataset: {
    start: String(segment.start), end: String(segment.end)}},
  h("span", {class: "time"}, `${formatTime(segment.start)}–${formatTime(segment.end)}`), " ",
  h("span", {class: "words"}, segment.text.trim()), " ",
  segment.emotion ? h("span", {class: `tag valence-${leaning(segment.emotion)}`}, segment.emotion.top_emotion) : null));
  const list = h("ol", {class: "transcript"}, items);
  const parts = [h("h4", {}, `Transcript (${transcript.language}, ${transcript.duration_s.toFixed(1)} s)`)];
  if (audioUrl) {
    const player = h("audio", {controls: true, src: audioUrl, preload: "metadata"});
    player.addEventListener("timeupdate", () => {
      for (const item of items) {
        const current = player.currentTime >= Number(item.dataset.start) && player.currentTime < Number(item.dataset.end);
        item.classList.toggle("current", current);
        if (current) item.setAttribute("aria-current", "true"); else item.removeAttribute("aria-current");
      }
    });
    for (const item of items) {
      item.tabIndex = 0;
      const seek = () => { player.currentTime = Number(item.dataset.start); player.play().catch(() => {}); };
      item.addEventListener("click", seek);
      item.addEventListener("keydown", (event) => { if (event.key === "Enter") seek(); });
    }
    parts.push(player);
  }
  parts.push(list);
  return h("div", {class: "transcript-view"}, parts);
}

export function summaryView(summary) {
  return h("div", {class: "summary"}, h("h4", {}, `Summary (${summary.method})`), h("p", {}, summary.summary));
}

/** Everything a finished job's result holds, by job type. */
export function resultView(job, audioUrl = null) {
  if (job.status !== "succeeded") {
    const reason = job.error ? `: ${job.error.message || job.error.code || ""}` : "";
    return h("p", {class: "problem"}, `The job ended ${job.status}${reason}`);
  }
  const result = job.result || {};
  const transcript = job.type === "analyze" ? result.transcript : (result.segments ? result : null);
  const emotion = job.type === "emotion" ? result : result.emotion;
  const summary = job.type === "summarize" ? result : result.summary;
  return h("div", {class: "result", dataset: {jobId: job.id, jobType: job.type}},
    emotion ? h("div", {}, h("h4", {}, "Emotions"), emotionBars(emotion), sentenceView(emotion)) : null,
    transcript ? transcriptView(transcript, audioUrl) : null,
    summary && summary.summary !== undefined ? summaryView(summary) : null);
}

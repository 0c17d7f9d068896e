/** Try it: type a text or drop a recording, and see the result arrive through the job's events. */
import {call, follow} from "../api.js";
import {h, statusLine} from "../dom.js";
import {resultView} from "../results.js";

export const TITLE = "Try it";
const TEXT_TYPES = ["emotion", "summarize", "analyze"];
const AUDIO_TYPES = ["transcribe", "analyze"];

export function render(container) {
  const closers = [];
  const status = statusLine();
  const output = h("div", {id: "try-result", "aria-live": "polite"});
  let audioFile = null;
  let audioUrl = null;

  const text = h("textarea", {id: "try-text", rows: 6, maxlength: 20000,
    placeholder: "Write an entry, e.g. I got the job and I'm thrilled. I miss my old team though."});
  const textType = h("select", {id: "try-text-type"}, TEXT_TYPES.map((type) => h("option", {value: type}, type)));
  const bySentence = h("input", {id: "try-sentences", type: "checkbox"});
  const fileInput = h("input", {id: "try-audio", type: "file", accept: "audio/*"});
  const audioType = h("select", {id: "try-audio-type"}, AUDIO_TYPES.map((type) => h("option", {value: type}, type)));
  const dropZone = h("div", {class: "drop-zone", id: "try-drop"}, "Drop a recording here, or choose a file: ",
    h("label", {for: "try-audio", class: "visually-hidden"}, "Recording"), fileInput);

  function chooseAudio(file) {
    audioFile = file || null;
    if (audioUrl) URL.revokeObjectURL(audioUrl);
    audioUrl = audioFile ? URL.createObjectURL(audioFile) : null;
    dropZone.dataset.file = audioFile ? audioFile.name : "";
    status.say(audioFile ? `Recording chosen: ${audioFile.name}` : "");
  }
  fileInput.addEventListener("change", () => chooseAudio(fileInput.files[0]));
  dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("over"); });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("over");
    chooseAudio(event.dataTransfer.files[0]);
  });

  function options(type) {
    return bySentence.checked && type !== "summarize" ? {granularity: "sentence"} : {};
  }

  async function submitted(job, playerUrl) {
    output.replaceChildren(h("p", {class: "pending", dataset: {jobId: job.id, status: job.status}},
      `Job ${job.id}: ${job.status}`));
    status.say("Waiting for the result…");
    const pending = output.firstChild;
    closers.push(await follow("job", job.id, {
      status(event) { pending.dataset.status = event.status; pending.textContent = `Job ${job.id}: ${event.status}`; },
      progress(event) {
        pending.textContent = `Job ${job.id}: transcribed ${event.seconds_done.toFixed(0)} of `
          + `${event.seconds_total.toFixed(0)} s`;
      },
      done(finished) {
        output.replaceChildren(resultView(finished, playerUrl));
        status.say(`Job ${finished.status}.`);
      },
      error() { status.fail(new Error("The job's event stream closed before the result; see the Jobs page.")); },
    }));
  }

  async function submitText(event) {
    event.preventDefault();
    if (!text.value.trim()) { status.fail(new Error("Type some text first.")); text.focus(); return; }
    try {
      const job = await call("POST", "/v1/jobs", {json: {
        type: textType.value, input: {text: text.value}, options: options(textType.value)}});
      await submitted(job, null);
    } catch (error) { status.fail(error); }
  }

  async function submitAudio(event) {
    event.preventDefault();
    if (!audioFile) { status.fail(new Error("Choose or drop a recording first.")); fileInput.focus(); return; }
    const form = new FormData();
    form.append("type", audioType.value);
    form.append("file", audioFile, audioFile.name);
    form.append("options", JSON.stringify(options(audioType.value)));
    try {
      const job = await call("POST", "/v1/jobs", {body: form});
      await submitted(job, audioUrl);
    } catch (error) { status.fail(error); }
  }

  container.append(
    h("h2", {}, TITLE),
    h("form", {id: "try-text-form", onsubmit: submitText},
      h("label", {for: "try-text"}, "Text"), text,
      h("div", {class: "row"}, h("label", {for: "try-text-type"}, "Job type"), textType,
        h("button", {type: "submit", id: "try-submit"}, "Analyse text"))),
    h("form", {id: "try-audio-form", onsubmit: submitAudio},
      dropZone,
      h("div", {class: "row"}, h("label", {for: "try-audio-type"}, "Job type"), audioType,
        h("button", {type: "submit", id: "try-audio-submit"}, "Transcribe recording"))),
    h("div", {class: "row"}, bySentence, h("label", {for: "try-sentences"}, "Emotions per sentence (or segment)")),
    status.element, output);
  return () => {
    for (const close of closers) close();
    if (audioUrl) URL.revokeObjectURL(audioUrl);
  };
}

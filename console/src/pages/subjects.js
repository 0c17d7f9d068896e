/**
 * Subjects: a subject's timeline (valence and its top labels per day or week) drawn with uPlot, its
 * insights and tag correlations in plain words. Everything shown is a descriptive statistic of the
 * emotion model's outputs for the entries sent, never a statement about the person.
 */
import uPlot from "../vendor/uPlot.esm.js";
import {call} from "../api.js";
import {h, percent, statusLine} from "../dom.js";

export const TITLE = "Subjects";
const DAY_MS = 86_400_000;
const DEFAULT_DAYS = 90;
const CHART_LABELS = 3;
const CHART_HEIGHT = 320;
const MIN_CHART_WIDTH = 280;
const DAY_FORMAT = new Intl.DateTimeFormat(undefined, {month: "short", day: "numeric"});
const SERIES_COLOURS = ["#1f6feb", "#c2410c", "#15803d", "#7e22ce"];
export const DESCRIPTIVE_NOTE = "These figures describe the emotion model's outputs for the entries this app sent. "
  + "They say nothing certain about the person who wrote them and are not an assessment or a diagnosis of anyone.";

function isoDate(date) {
  return date.toISOString().slice(0, 10);
}

/** The chart's data as plain arrays: x in seconds, the valence score and each top label's mean probability. */
export function chartData(timeline) {
  const buckets = timeline.buckets.filter((bucket) => bucket.entries > 0);
  const totals = {};
  for (const bucket of buckets) {
    for (const [label, p] of Object.entries(bucket.mean_probabilities)) {
      totals[label] = (totals[label] || 0) + p * bucket.entries;
    }
  }
  const labels = Object.entries(totals).filter(([label]) => label !== "neutral")
    .sort((a, b) => b[1] - a[1]).slice(0, CHART_LABELS).map(([label]) => label);
  const round = (value) => Math.round(value * 1e4) / 1e4;
  return {
    bucket: timeline.bucket,
    x: buckets.map((bucket) => Date.parse(bucket.start) / 1000),
    entries: buckets.map((bucket) => bucket.entries),
    valence: buckets.map((bucket) => round(bucket.valence.positive - bucket.valence.negative)),
    labels,
    series: Object.fromEntries(labels.map((label) => [label, buckets.map((b) => round(b.mean_probabilities[label] || 0))])),
  };
}

function chartWidth(target) {
  return Math.max(MIN_CHART_WIDTH, target.clientWidth || MIN_CHART_WIDTH);
}

function drawChart(target, data) {
  target.replaceChildren();
  target.dataset.chart = JSON.stringify(data);
  target.dataset.points = String(data.x.length);
  if (!data.x.length) {
    target.append(h("p", {}, "No entries in this range."));
    return null;
  }
  const options = {
    width: chartWidth(target), height: CHART_HEIGHT,
    title: `Valence and top labels per ${data.bucket}`,
    scales: {x: {time: true}, y: {range: [-1, 1]}},
    axes: [{values: (_plot, splits) => splits.map((s) => DAY_FORMAT.format(new Date(s * 1000)))}, {}],
    series: [
      {},
      {label: "valence score", stroke: SERIES_COLOURS[0], width: 2},
      ...data.labels.map((label, i) => ({label: `${label} (mean probability)`, stroke: SERIES_COLOURS[i + 1], width: 1.5})),
    ],
  };
  const plot = new uPlot(options, [data.x, data.valence, ...data.labels.map((label) => data.series[label])], target);
  target.samoChart = plot;
  const resize = new ResizeObserver(() => plot.setSize({width: chartWidth(target), height: CHART_HEIGHT}));
  resize.observe(target);
  const destroy = plot.destroy.bind(plot);
  plot.destroy = () => { resize.disconnect(); destroy(); };
  return plot;
}

function changeSentence(change, direction) {
  const before = percent(change.baseline_mean_probability || 0);
  const after = percent(change.window_mean_probability || 0);
  return `The model gave "${change.label}" a ${direction} mean probability in the recent window (${after}) than in `
    + `the baseline before it (${before}); effect size ${change.effect_size.toFixed(2)}.`;
}

export function insightWords(insights) {
  const period = `the ${insights.window.entries} entries of the recent window against the ${insights.baseline.entries} `
    + "entries before it";
  if (!insights.enough_entries) {
    return [`Not enough entries to compare (${period}; at least ${insights.min_entries} are needed in each), `
      + "so nothing is claimed."];
  }
  const lines = [`Comparing ${period}: the shift score of the model's label distribution is `
    + `${insights.shift_score.toFixed(2)} (0 is the same distribution, 1 entirely different).`];
  for (const change of insights.rose) lines.push(changeSentence(change, "higher"));
  for (const change of insights.fell) lines.push(changeSentence(change, "lower"));
  if (!insights.rose.length && !insights.fell.length) lines.push("No label's probability changed clearly between the two periods.");
  return lines;
}

export function correlationWords(correlations) {
  if (!correlations.correlations.length) {
    return [`No tag went with any label clearly more often, over ${correlations.entries} entries `
      + `(${correlations.pairs_tested} tag and label pairs tested).`];
  }
  return correlations.correlations.map((pair) => `Entries tagged "${pair.tag}" had "${pair.label}" over its threshold `
    + `${pair.lift.toFixed(1)} times as often as entries without it (${pair.label_passes_with_tag} of `
    + `${pair.entries_with_tag} against ${pair.label_passes_without_tag} of ${pair.entries_without_tag}). `
    + "An association in the model's outputs, not a cause.");
}

export function render(container) {
  const status = statusLine();
  const now = new Date();
  const subject = h("input", {id: "subject-name", type: "text", required: true, maxlength: 128, spellcheck: "false"});
  const bucket = h("select", {id: "subject-bucket"}, ["day", "week"].map((b) => h("option", {value: b}, b)));
  const from = h("input", {id: "subject-from", type: "date", value: isoDate(new Date(now - DEFAULT_DAYS * DAY_MS))});
  const to = h("input", {id: "subject-to", type: "date", value: isoDate(new Date(now.getTime() + DAY_MS))});
  const chart = h("div", {id: "subject-chart", class: "chart", role: "img", "aria-label": "Timeline chart"});
  const insights = h("ul", {id: "subject-insights"});
  const correlations = h("ul", {id: "subject-correlations"});
  let plot = null;

  async function open(event) {
    event.preventDefault();
    const name = encodeURIComponent(subject.value.trim());
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    const query = new URLSearchParams({from: from.value, to: to.value, bucket: bucket.value, tz});
    try {
      status.say("Loading…");
      const timeline = await call("GET", `/v1/subjects/${name}/emotions?${query}`);
      if (plot) plot.destroy();
      const data = chartData(timeline);
      plot = drawChart(chart, data);
      chart.setAttribute("aria-label", `Chart of ${data.x.length} ${timeline.bucket}s: valence score and `
        + `mean probability of ${data.labels.join(", ") || "no labels"}`);
      const [found, paired] = await Promise.all([
        call("GET", `/v1/subjects/${name}/insights?window=7d&baseline=30d`),
        call("GET", `/v1/subjects/${name}/correlations`),
      ]);
      insights.replaceChildren(...insightWords(found).map((line) => h("li", {}, line)));
      correlations.replaceChildren(...correlationWords(paired).map((line) => h("li", {}, line)));
      status.say(`${data.entries.reduce((a, b) => a + b, 0)} entries in the range.`);
    } catch (error) { status.fail(error); }
  }

  container.append(
    h("h2", {}, TITLE),
    h("p", {class: "note"}, DESCRIPTIVE_NOTE),
    h("form", {id: "subject-form", class: "filters", onsubmit: open},
      h("label", {for: "subject-name"}, "Subject"), subject,
      h("label", {for: "subject-bucket"}, "Per"), bucket,
      h("label", {for: "subject-from"}, "From"), from,
      h("label", {for: "subject-to"}, "To"), to,
      h("button", {type: "submit", id: "subject-open"}, "Show")),
    status.element, chart,
    h("h3", {}, "Insights: the last 7 days against the 30 before"), insights,
    h("h3", {}, "Tags and labels"), correlations);
  return () => { if (plot) plot.destroy(); };
}

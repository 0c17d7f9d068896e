/** Batches: upload a CSV or JSONL file, watch its progress through the batch's events, download results. */
import {call, follow, upload} from "../api.js";
import {h, percent, statusLine} from "../dom.js";

export const TITLE = "Batches";
const FINISHED = new Set(["completed", "canceled"]);

export function render(container) {
  const closers = [];
  const status = statusLine();
  const file = h("input", {id: "batch-file", type: "file", accept: ".csv,.jsonl,.json,text/csv,application/x-ndjson"});
  const bar = h("progress", {id: "batch-progress", max: 1, value: 0});
  const barText = h("span", {id: "batch-progress-text"}, "");
  const counts = h("p", {id: "batch-counts"});
  const rows = h("tbody", {});

  function showProgress(value, text) {
    bar.value = value;
    bar.dataset.progress = String(value);
    barText.textContent = text;
  }

  function downloadButton(batch, format) {
    return h("button", {type: "button", onclick: async () => {
      try {
        const response = await call("GET", `/v1/batches/${batch.id}/results?format=${format}`, {accept: "*/*"});
        const link = h("a", {href: URL.createObjectURL(await response.blob()), download: `batch-${batch.id}.${format}`});
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      } catch (error) { status.fail(error); }
    }}, `Results (${format})`);
  }

  function row(batch) {
    return h("tr", {dataset: {batchId: batch.id}},
      h("td", {}, h("code", {}, batch.id.slice(0, 8))), h("td", {}, batch.status),
      h("td", {}, `${batch.total_items}`), h("td", {}, percent(batch.progress)),
      h("td", {}, new Date(batch.created_at).toLocaleString()),
      h("td", {class: "actions"}, downloadButton(batch, "csv"), downloadButton(batch, "jsonl")));
  }

  async function list() {
    try {
      const page = await call("GET", "/v1/batches?limit=20");
      rows.replaceChildren(...page.data.map(row));
    } catch (error) { status.fail(error); }
  }

  function showCounts(doc) {
    const parts = Object.entries(doc.counts || {}).map(([name, n]) => `${name} ${n}`);
    const eta = doc.eta_s === null || doc.eta_s === undefined ? "" : `, about ${Math.ceil(doc.eta_s)} s left`;
    counts.textContent = `${doc.status}: ${parts.join(", ")}${eta}`;
  }

  async function submit(event) {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) { status.fail(new Error("Choose a CSV or JSONL file first.")); file.focus(); return; }
    const form = new FormData();
    form.append("file", chosen, chosen.name);
    showProgress(0, "Uploading…");
    try {
      const batch = await upload("/v1/batches", form, (sent) => showProgress(0, `Uploading ${percent(sent)}`));
      status.say(`Batch ${batch.id} accepted: ${batch.total_items} items, ${batch.invalid_items} refused.`);
      bar.dataset.batchId = batch.id;
      showProgress(batch.progress, percent(batch.progress));
      showCounts(batch);
      closers.push(await follow("batch", batch.id, {
        progress(update) { showProgress(update.progress, percent(update.progress)); showCounts(update); },
        done(finished) {
          showProgress(finished.progress, percent(finished.progress));
          showCounts(finished);
          bar.dataset.status = finished.status;
          list();
        },
        error() { if (!FINISHED.has(bar.dataset.status)) status.fail(new Error("The batch's event stream closed early.")); },
      }));
    } catch (error) { status.fail(error); showProgress(0, ""); }
  }

  container.append(
    h("h2", {}, TITLE),
    h("form", {id: "batch-form", onsubmit: submit},
      h("label", {for: "batch-file"}, "Items (CSV with a text column, or JSONL)"), file,
      h("button", {type: "submit", id: "batch-submit"}, "Upload")),
    h("div", {class: "row"}, h("label", {for: "batch-progress"}, "Progress"), bar, barText),
    counts, status.element,
    h("h3", {}, "Recent batches"),
    h("div", {class: "table-wrap"}, h("table", {id: "batches-table"},
      h("thead", {}, h("tr", {}, ["Batch", "Status", "Items", "Done", "Created", "Download"].map((c) =>
        h("th", {scope: "col"}, c)))), rows)));
  list();
  return () => { for (const close of closers) close(); };
}

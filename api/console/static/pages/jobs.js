/** Jobs: the account's jobs, newest first, with filters, live status through events, cancel and delete. */
import {call, follow} from "../api.js";
import {h, statusLine} from "../dom.js";
import {resultView} from "../results.js";

export const TITLE = "Jobs";
const STATUSES = ["", "queued", "running", "succeeded", "failed", "canceled"];
const TYPES = ["", "emotion", "summarize", "transcribe", "analyze"];
const FINISHED = new Set(["succeeded", "failed", "canceled"]);
const PAGE_SIZE = 25;
/** Streams held open at once for the listed jobs still in progress. */
const MAX_LIVE = 10;

export function render(container) {
  const closers = new Map();
  const status = statusLine();
  const statusFilter = h("select", {id: "jobs-status"}, STATUSES.map((s) => h("option", {value: s}, s || "any")));
  const typeFilter = h("select", {id: "jobs-type"}, TYPES.map((t) => h("option", {value: t}, t || "any")));
  const subjectFilter = h("input", {id: "jobs-subject", type: "text", maxlength: 128});
  const rows = h("tbody", {});
  const detail = h("div", {id: "job-detail"});
  const more = h("button", {type: "button", id: "jobs-more", hidden: true}, "More");
  let cursor = null;

  function closeAll() {
    for (const close of closers.values()) close();
    closers.clear();
  }

  function query() {
    const params = new URLSearchParams({limit: String(PAGE_SIZE)});
    if (statusFilter.value) params.set("status", statusFilter.value);
    if (typeFilter.value) params.set("type", typeFilter.value);
    if (subjectFilter.value.trim()) params.set("subject", subjectFilter.value.trim());
    if (cursor) params.set("cursor", cursor);
    return params;
  }

  function row(job) {
    const state = h("td", {class: "job-status", dataset: {status: job.status}}, job.status);
    const cancel = h("button", {type: "button", disabled: FINISHED.has(job.status)}, "Cancel");
    const remove = h("button", {type: "button", class: "danger"}, "Delete");
    const show = h("button", {type: "button"}, "Show");
    const tr = h("tr", {dataset: {jobId: job.id}},
      h("td", {}, h("code", {}, job.id.slice(0, 8))), h("td", {}, job.type), state,
      h("td", {}, job.subject || ""), h("td", {}, new Date(job.created_at).toLocaleString()),
      h("td", {class: "actions"}, show, cancel, remove));
    const update = (next) => {
      state.textContent = next;
      state.dataset.status = next;
      cancel.disabled = FINISHED.has(next);
    };
    show.addEventListener("click", async () => {
      try { detail.replaceChildren(h("h3", {}, `Job ${job.id}`), resultView(await call("GET", `/v1/jobs/${job.id}`))); }
      catch (error) { status.fail(error); }
    });
    cancel.addEventListener("click", async () => {
      try { update((await call("POST", `/v1/jobs/${job.id}/cancel`)).status); status.say(`Job ${job.id} canceled.`); }
      catch (error) { status.fail(error); }
    });
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete job ${job.id} and its result? This cannot be undone.`)) return;
      try {
        await call("DELETE", `/v1/jobs/${job.id}`);
        tr.remove();
        status.say(`Job ${job.id} deleted.`);
      } catch (error) { status.fail(error); }
    });
    if (!FINISHED.has(job.status) && closers.size < MAX_LIVE) {
      follow("job", job.id, {
        status: (event) => update(event.status),
        done: (finished) => { update(finished.status); closers.delete(job.id); },
      }).then((close) => closers.set(job.id, close)).catch((error) => status.fail(error));
    }
    return tr;
  }

  async function load(append = false) {
    if (!append) { cursor = null; closeAll(); rows.replaceChildren(); }
    try {
      const page = await call("GET", `/v1/jobs?${query()}`);
      for (const job of page.data) rows.append(row(job));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.say(rows.children.length ? `${rows.children.length} jobs shown.` : "No jobs match.");
    } catch (error) { status.fail(error); }
  }

  more.addEventListener("click", () => load(true));
  container.append(
    h("h2", {}, TITLE),
    h("form", {class: "filters", onsubmit: (event) => { event.preventDefault(); load(); }},
      h("label", {for: "jobs-status"}, "Status"), statusFilter,
      h("label", {for: "jobs-type"}, "Type"), typeFilter,
      h("label", {for: "jobs-subject"}, "Subject"), subjectFilter,
      h("button", {type: "submit"}, "Filter")),
    status.element,
    h("div", {class: "table-wrap"}, h("table", {id: "jobs-table"},
      h("caption", {class: "visually-hidden"}, "Jobs, newest first"),
      h("thead", {}, h("tr", {}, ["Job", "Type", "Status", "Subject", "Created", "Actions"].map((c) =>
        h("th", {scope: "col"}, c)))), rows)),
    more, detail);
  load();
  return closeAll;
}

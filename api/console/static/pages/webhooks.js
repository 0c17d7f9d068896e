/** Webhooks: the account's endpoints (add, enable, rotate the secret, remove) and deliveries (redeliver). */
import {call} from "../api.js";
import {h, statusLine} from "../dom.js";

export const TITLE = "Webhooks";
const EVENTS = ["job.succeeded", "job.failed", "batch.completed"];

export function render(container) {
  const status = statusLine();
  const endpoints = h("tbody", {});
  const deliveries = h("tbody", {});
  const secret = h("p", {id: "webhook-secret", role: "status", "aria-live": "polite"});
  const url = h("input", {id: "webhook-url", type: "url", required: true, placeholder: "https://example.com/hooks"});
  const description = h("input", {id: "webhook-description", type: "text", maxlength: 500});

  function showSecret(document) {
    secret.replaceChildren("Signing secret of ", h("code", {}, document.url), " (shown once; store it now): ",
      h("code", {class: "secret"}, document.secret));
  }

  function endpointRow(endpoint) {
    const state = endpoint.enabled ? "enabled" : `disabled${endpoint.disabled_reason ? ` (${endpoint.disabled_reason})` : ""}`;
    return h("tr", {dataset: {endpointId: endpoint.id}},
      h("td", {}, h("code", {}, endpoint.url)), h("td", {}, endpoint.events.join(", ")), h("td", {}, state),
      h("td", {class: "actions"},
        endpoint.enabled ? null : h("button", {type: "button", onclick: () => act(() =>
          call("PATCH", `/v1/webhooks/endpoints/${endpoint.id}`, {json: {enabled: true}}), "Endpoint enabled.")}, "Enable"),
        h("button", {type: "button", onclick: () => act(async () => {
          showSecret(await call("POST", `/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`));
        }, "Secret rotated; the previous one keeps working for a while.")}, "Rotate secret"),
        h("button", {type: "button", class: "danger", onclick: () => {
          if (window.confirm(`Remove the endpoint ${endpoint.url}?`)) {
            act(() => call("DELETE", `/v1/webhooks/endpoints/${endpoint.id}`), "Endpoint removed.");
          }
        }}, "Remove")));
  }

  function deliveryRow(delivery) {
    return h("tr", {dataset: {deliveryId: delivery.id}},
      h("td", {}, delivery.event_type), h("td", {}, delivery.status), h("td", {}, String(delivery.attempts)),
      h("td", {}, delivery.last_status_code === null ? (delivery.last_error || "") : String(delivery.last_status_code)),
      h("td", {}, h("code", {}, delivery.url)), h("td", {}, new Date(delivery.created_at).toLocaleString()),
      h("td", {class: "actions"}, h("button", {type: "button", onclick: () => act(() =>
        call("POST", `/v1/webhooks/deliveries/${delivery.id}/redeliver`), "Delivery queued again.")}, "Redeliver")));
  }

  async function load() {
    try {
      const [endpointPage, deliveryPage] = await Promise.all([
        call("GET", "/v1/webhooks/endpoints"), call("GET", "/v1/webhooks/deliveries?limit=25")]);
      endpoints.replaceChildren(...endpointPage.data.map(endpointRow));
      deliveries.replaceChildren(...deliveryPage.data.map(deliveryRow));
    } catch (error) { status.fail(error); }
  }

  async function act(action, done) {
    try { await action(); status.say(done); await load(); } catch (error) { status.fail(error); }
  }

  const eventBoxes = EVENTS.map((name) => {
    const id = `webhook-event-${name.replace(".", "-")}`;
    return h("span", {class: "check"}, h("input", {id, type: "checkbox", value: name, checked: true}),
      h("label", {for: id}, name));
  });

  async function create(event) {
    event.preventDefault();
    const events = eventBoxes.map((box) => box.querySelector("input")).filter((box) => box.checked).map((box) => box.value);
    await act(async () => {
      showSecret(await call("POST", "/v1/webhooks/endpoints", {json: {url: url.value, events, description: description.value}}));
      url.value = "";
    }, "Endpoint added.");
  }

  container.append(
    h("h2", {}, TITLE),
    h("form", {id: "webhook-form", onsubmit: create},
      h("label", {for: "webhook-url"}, "Endpoint URL"), url,
      h("label", {for: "webhook-description"}, "Description"), description,
      h("fieldset", {}, h("legend", {}, "Events"), eventBoxes),
      h("button", {type: "submit"}, "Add endpoint")),
    secret, status.element,
    h("h3", {}, "Endpoints"),
    h("div", {class: "table-wrap"}, h("table", {id: "webhook-endpoints"},
      h("thead", {}, h("tr", {}, ["URL", "Events", "State", "Actions"].map((c) => h("th", {scope: "col"}, c)))), endpoints)),
    h("h3", {}, "Recent deliveries"),
    h("div", {class: "table-wrap"}, h("table", {id: "webhook-deliveries"},
      h("thead", {}, h("tr", {}, ["Event", "Status", "Attempts", "Last answer", "URL", "Created", "Actions"].map((c) =>
        h("th", {scope: "col"}, c)))), deliveries)));
  load();
  return null;
}

/** A small element builder: h("p", {class: "x"}, "text", child). No innerHTML anywhere. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name in element && typeof value !== "string") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : value);
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

export function percent(value) {
  return `${(value * 100).toFixed(1)} %`;
}

export function formatTime(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

/** A status line that screen readers announce; errors carry the problem's title and detail. */
export function statusLine() {
  const line = h("p", {class: "status", role: "status", "aria-live": "polite"});
  return {
    element: line,
    say(text) { line.classList.remove("problem"); line.textContent = text; },
    fail(error) { line.classList.add("problem"); line.textContent = describeError(error); },
    clear() { line.classList.remove("problem"); line.textContent = ""; },
  };
}

export function describeError(error) {
  if (error && error.problem) {
    const {title, detail} = error.problem;
    return detail ? `${title}: ${detail}` : title;
  }
  return error && error.message ? error.message : String(error);
}

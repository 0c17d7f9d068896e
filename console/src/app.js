import {onSignedOut, signIn, signOut, signedIn} from "./api.js";
import {describeError} from "./dom.js";
import * as batches from "./pages/batches.js";
import * as jobs from "./pages/jobs.js";
import * as subjects from "./pages/subjects.js";
import * as tryIt from "./pages/try.js";
import * as webhooks from "./pages/webhooks.js";

const PAGES = {try: tryIt, jobs, batches, subjects, webhooks};
const DEFAULT_PAGE = "try";

let leaveCurrent = null;

function pageName() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return name in PAGES ? name : DEFAULT_PAGE;
}

function showPage() {
  if (!signedIn()) return;
  const name = pageName();
  if (leaveCurrent) leaveCurrent();
  const container = document.getElementById("page");
  container.replaceChildren();
  container.dataset.page = name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  leaveCurrent = PAGES[name].render(container) || null;
  document.title = `${PAGES[name].TITLE} · SAMO Brain console`;
}

function showSignedIn(isSignedIn) {
  document.getElementById("sign-in").hidden = isSignedIn;
  document.getElementById("page").hidden = !isSignedIn;
  document.getElementById("nav").hidden = !isSignedIn;
  document.getElementById("sign-out").hidden = !isSignedIn;
  document.body.dataset.signedIn = String(isSignedIn);
}

function start() {
  const form = document.getElementById("sign-in-form");
  const error = document.getElementById("sign-in-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const input = document.getElementById("api-key");
    try {
      await signIn(input.value.trim());
      input.value = "";
      showSignedIn(true);
      showPage();
      document.getElementById("main").focus();
    } catch (problem) {
      error.textContent = describeError(problem);
      error.hidden = false;
    }
  });
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  onSignedOut(() => {
    if (leaveCurrent) leaveCurrent();
    leaveCurrent = null;
    document.getElementById("page").replaceChildren();
    showSignedIn(false);
    document.getElementById("api-key").focus();
  });
  window.addEventListener("hashchange", showPage);
  showSignedIn(false);
}

start();

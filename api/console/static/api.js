/**
 * The console's only way to the API. The API key typed at sign-in is exchanged for an access token
 * and a refresh token (POST /v1/auth/token); both live in this module's memory only, never in
 * localStorage, sessionStorage or cookies, and the access token is refreshed before it expires.
 */
const REFRESH_MARGIN_S = 30;

const session = {access: null, refresh: null, expiresAt: 0, timer: null, scopes: []};
const signedOutListeners = [];

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.title ? problem.title : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function readProblem(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try { return await response.json(); } catch { /* an empty or broken body */ }
  }
  return {title: `HTTP ${response.status}`, status: response.status};
}

async function tokenRequest(body) {
  const response = await fetch("/v1/auth/token", {
    method: "POST",
    headers: {"Content-Type": "application/json", Accept: "application/json"},
    body: JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) throw new ApiError(response.status, await readProblem(response));
  return response.json();
}

function keep(tokens) {
  session.access = tokens.access_token;
  session.refresh = tokens.refresh_token;
  session.expiresAt = Date.now() + tokens.expires_in * 1000;
  session.scopes = (tokens.scope || "").split(" ").filter(Boolean);
  clearTimeout(session.timer);
  const refreshInS = Math.max(1, tokens.expires_in - REFRESH_MARGIN_S);
  session.timer = setTimeout(() => refreshTokens().catch(() => signOut()), refreshInS * 1000);
}

export async function signIn(apiKey) {
  keep(await tokenRequest({grant_type: "api_key", api_key: apiKey}));
}

async function refreshTokens() {
  if (!session.refresh) throw new ApiError(401, {title: "Signed out"});
  keep(await tokenRequest({grant_type: "refresh_token", refresh_token: session.refresh}));
}

export function signedIn() {
  return session.access !== null;
}

export function scopes() {
  return session.scopes.slice();
}

export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

export function signOut() {
  clearTimeout(session.timer);
  Object.assign(session, {access: null, refresh: null, expiresAt: 0, timer: null, scopes: []});
  for (const listener of signedOutListeners) listener();
}

async function accessToken() {
  if (session.access && Date.now() > session.expiresAt - REFRESH_MARGIN_S * 1000) await refreshTokens();
  if (!session.access) throw new ApiError(401, {title: "Signed out", detail: "Sign in with an API key."});
  return session.access;
}

/** A call to the API with the access token; a problem answer becomes an ApiError carrying it. */
export async function call(method, path, {json, body, headers = {}, accept = "application/json"} = {}) {
  const init = {method, headers: {Accept: accept, ...headers}, credentials: "omit", cache: "no-store"};
  init.headers.Authorization = `Bearer ${await accessToken()}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (response.status === 401 && session.refresh) {
    signOut();
  }
  if (!response.ok) throw new ApiError(response.status, await readProblem(response));
  if (response.status === 204) return null;
  if (accept === "application/json") return response.json();
  return response;
}

/** Upload with progress of the bytes sent (fetch has none): resolves to the parsed JSON answer. */
export async function upload(path, formData, onProgress) {
  const token = await accessToken();
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    request.setRequestHeader("Authorization", `Bearer ${token}`);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let answer = null;
      try { answer = JSON.parse(request.responseText); } catch { answer = null; }
      if (request.status >= 200 && request.status < 300) resolve(answer);
      else reject(new ApiError(request.status, answer || {title: `HTTP ${request.status}`}));
    });
    request.addEventListener("error", () => reject(new ApiError(0, {title: "Network error"})));
    request.send(formData);
  });
}

/**
 * A job's or a batch's live events: a single-use stream ticket (POST /v1/events/tickets), then an
 * EventSource on the URL it names, since EventSource cannot send an Authorization header.
 * ``handlers`` maps event names (status, progress, done) to functions of the parsed data; the
 * stream closes after ``done``. Returns a function that closes it.
 */
export async function follow(resource, id, handlers) {
  const field = resource === "batch" ? "batch_id" : "job_id";
  const ticket = await call("POST", "/v1/events/tickets", {json: {[field]: id}});
  const source = new EventSource(ticket.url);
  for (const [name, handler] of Object.entries(handlers)) {
    if (name === "error") continue;
    source.addEventListener(name, (event) => {
      if (name === "done") source.close();
      handler(JSON.parse(event.data));
    });
  }
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED && handlers.error) handlers.error();
  });
  return () => source.close();
}

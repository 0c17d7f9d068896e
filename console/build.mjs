// Builds the console's third-party part into api/console/static/: the pinned libraries' files
// (copied as they are into vendor/), their licences, and a manifest of SHA-256 digests of the
// build's inputs and outputs that tests/unit/test_console_build.py checks. The console's own pages
// are plain ES modules served as written from api/console/static/ (no bundler), so they are not built.
// Run with `make console` (npm ci, then this).
import {createHash} from "node:crypto";
import {cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from "node:fs";
import {dirname, join, relative} from "node:path";
import {fileURLToPath} from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "api", "console", "static");
const MANIFEST = "build-manifest.json";
/** Library files the page loads, by package: copied into vendor/. */
const VENDORED = {uplot: ["dist/uPlot.esm.js", "dist/uPlot.min.css"]};
/** The files whose change changes the build. */
const INPUT_FILES = ["package.json", "package-lock.json", "build.mjs"];

function filesUnder(root) {
  return readdirSync(root).flatMap((name) => {
    const path = join(root, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function digests(root, paths) {
  return Object.fromEntries(paths.map((path) => relative(root, path).split("\\").join("/")).sort()
    .map((name) => [name, sha256(join(root, name))]));
}

const vendor = join(out, "vendor");
rmSync(vendor, {recursive: true, force: true});
mkdirSync(vendor, {recursive: true});
const licences = [];
for (const [name, files] of Object.entries(VENDORED)) {
  const root = join(here, "node_modules", name);
  const meta = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  for (const file of files) cpSync(join(root, file), join(vendor, file.split("/").pop()));
  licences.push(`${meta.name} ${meta.version} (${meta.license}) ${meta.homepage || ""}\n\n`
    + readFileSync(join(root, "LICENSE"), "utf8").trim());
}
writeFileSync(join(out, "THIRD_PARTY_LICENSES"),
  "Third-party software in the SAMO Brain console (api/console/static/vendor/):\n\n" + licences.join("\n\n---\n\n") + "\n");
const inputs = digests(here, INPUT_FILES.map((file) => join(here, file)));
const outputs = digests(out, [...filesUnder(vendor), join(out, "THIRD_PARTY_LICENSES")]);
writeFileSync(join(out, MANIFEST), JSON.stringify({inputs, outputs}, null, 2) + "\n");
console.log(`console built into ${relative(process.cwd(), out) || out}: ${Object.keys(outputs).length} files`);

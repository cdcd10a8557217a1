// The hand-written type declarations name exactly what each entry point
// exports at run time, so that they cannot drift apart unnoticed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

/** The value exports an index.d.ts-style file declares (types and interfaces excluded). */
function declared(file) {
  const text = readFileSync(new URL(`../${file}`, import.meta.url), "utf8");
  return [...text.matchAll(/^export (?:declare )?(?:function|class|const) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]).sort();
}

for (const [entry, dts] of [
  ["../index.js", "index.d.ts"],
  ["../ethers.js", "ethers.d.ts"],
  ["../viem.js", "viem.d.ts"],
]) {
  test(`${dts} declares what ${entry.slice(3)} exports`, async () => {
    const mod = await import(entry);
    assert.deepEqual(declared(dts), Object.keys(mod).sort());
  });
}

test("package.json's exports are the three entry points", () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.deepEqual(pkg.exports, {
    ".": { types: "./index.d.ts", default: "./index.js" },
    "./ethers": { types: "./ethers.d.ts", default: "./ethers.js" },
    "./viem": { types: "./viem.d.ts", default: "./viem.js" },
  });
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}), [], "no run-time dependencies");
  assert.equal(pkg.devDependencies.ethers, pkg.devDependencies.ethers.replace(/^[~^]/, ""), "ethers pinned exactly");
  assert.equal(pkg.devDependencies.viem, pkg.devDependencies.viem.replace(/^[~^]/, ""), "viem pinned exactly");
});

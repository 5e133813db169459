"""The listening-test page: one HTML file, videos inline as data URIs, answers kept in the browser.

Part 1 shows every item's video (HTML5 <video controls>, the mp4 as a data URI) with the part-1 questions.
Part 2 (timbre similarity) opens once part 1 is complete and locks it, because its target sound is the real
recording of a clip, which would give the real-or-fake answers away. Answers live in localStorage under the
test's id (a reload or a crash loses nothing) and are exported as CSV: one row per rater x item x question,
columns `CSV_COLUMNS`.
"""

from __future__ import annotations

import html
import json

CSV_COLUMNS = ("rater", "item", "system", "clip", "question", "answer", "timestamp")

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 58rem; margin: 1rem auto; padding: 0 1rem; color: #222; }
header { border-bottom: 1px solid #ccc; margin-bottom: 1rem; }
section.item, section.pair { border: 1px solid #ccc; border-radius: 6px; padding: 0.8rem; margin: 1rem 0; }
video { width: 100%; max-height: 60vh; background: #000; }
fieldset { border: 1px solid #ddd; margin: 0.6rem 0; }
fieldset:disabled { opacity: 0.6; }
legend { font-weight: 600; }
label.choice { display: block; padding: 0.15rem 0; cursor: pointer; }
.prompt { margin: 0.2rem 0 0.4rem; color: #444; }
#bar { position: sticky; top: 0; background: #f6f6f6; padding: 0.5rem; border: 1px solid #ddd; z-index: 1; }
.source { font-size: 0.8rem; color: #666; }
"""

_SCRIPT = r"""
"use strict";
const TEST = JSON.parse(document.getElementById("v2s-test").textContent);
const STORE = "v2s-listening-test:" + TEST.test_id;
const COLUMNS = ["rater", "item", "system", "clip", "question", "answer", "timestamp"];
const part1 = TEST.questions.filter(q => q.part === 1);
const part2 = TEST.questions.filter(q => q.part === 2);
let state = {rater: "", answers: {}, part2: false};
try { Object.assign(state, JSON.parse(localStorage.getItem(STORE) || "{}")); } catch (e) { /* a fresh start */ }

function save() { localStorage.setItem(STORE, JSON.stringify(state)); }

function decodeMap() {
  if (!TEST.map) return {};
  const bytes = Uint8Array.from(atob(TEST.map), c => c.charCodeAt(0));
  for (let i = 0; i < bytes.length; i++) bytes[i] ^= TEST.test_id.charCodeAt(i % TEST.test_id.length);
  return JSON.parse(new TextDecoder().decode(bytes));
}

function questionBlock(item, q) {
  const fs = document.createElement("fieldset");
  fs.dataset.item = item; fs.dataset.question = q.key;
  const legend = document.createElement("legend"); legend.textContent = q.title; fs.appendChild(legend);
  const p = document.createElement("p"); p.className = "prompt"; p.textContent = q.prompt; fs.appendChild(p);
  for (const [value, label] of q.choices) {
    const lab = document.createElement("label"); lab.className = "choice";
    const input = document.createElement("input");
    input.type = "radio"; input.name = item + "|" + q.key; input.value = value;
    input.dataset.item = item; input.dataset.question = q.key;
    const saved = state.answers[input.name];
    if (saved && saved.answer === value) input.checked = true;
    input.addEventListener("change", () => {
      state.answers[input.name] = {answer: value, timestamp: new Date().toISOString()};
      save(); update();
    });
    lab.appendChild(input);
    lab.appendChild(document.createTextNode(" " + (q.mos ? value + " - " : "") + label));
    fs.appendChild(lab);
  }
  return fs;
}

function answeredCount(items, questions) {
  let n = 0;
  for (const item of items) for (const q of questions) if (state.answers[item + "|" + q.key]) n++;
  return n;
}

function update() {
  const total1 = TEST.items.length * part1.length;
  const done1 = answeredCount(TEST.items, part1);
  const pairs = TEST.timbre.map(t => t.id);
  const total2 = pairs.length * part2.length;
  const done2 = answeredCount(pairs, part2);
  document.getElementById("progress").textContent =
    "Answered " + (done1 + done2) + " of " + (total1 + total2) + " questions";
  const start = document.getElementById("start-part2");
  if (start) {
    start.disabled = state.part2 || done1 < total1;
    document.getElementById("part2").hidden = !state.part2;
  }
  for (const fs of document.querySelectorAll("#part1 fieldset")) fs.disabled = state.part2;
}

function buildPart1() {
  for (const section of document.querySelectorAll("#part1 section.item")) {
    const item = section.dataset.item;
    for (const q of part1) section.appendChild(questionBlock(item, q));
  }
}

function buildPart2() {
  const box = document.getElementById("pairs");
  if (!box) return;
  TEST.timbre.forEach((t, k) => {
    const section = document.createElement("section"); section.className = "pair"; section.dataset.item = t.id;
    const h = document.createElement("h3"); h.textContent = "Pair " + (k + 1) + " of " + TEST.timbre.length;
    section.appendChild(h);
    for (const [label, source] of [["Target (original audio)", t.ref], ["Test audio", t.id]]) {
      const p = document.createElement("p"); p.textContent = label + ": ";
      const audio = document.createElement("audio"); audio.controls = true; audio.preload = "none";
      audio.className = label.startsWith("Target") ? "target" : "test";
      audio.src = document.getElementById("v-" + source).getAttribute("src");
      p.appendChild(audio); section.appendChild(p);
    }
    for (const q of part2) section.appendChild(questionBlock(t.id, q));
    box.appendChild(section);
  });
}

function csvField(value) {
  const s = String(value);
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

function exportCsv() {
  const status = document.getElementById("export-status");
  if (!state.rater) { status.textContent = "Enter your rater id first."; return null; }
  const map = decodeMap();
  const lines = [COLUMNS.join(",")];
  const groups = [[TEST.items, part1], [TEST.timbre.map(t => t.id), part2]];
  for (const [items, questions] of groups) {
    for (const item of items) for (const q of questions) {
      const a = state.answers[item + "|" + q.key];
      if (!a) continue;
      const [system, clip] = map[item] || ["", ""];
      lines.push([state.rater, item, system, clip, q.key, a.answer, a.timestamp].map(csvField).join(","));
    }
  }
  const csv = lines.join("\r\n") + "\r\n";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([csv], {type: "text/csv"}));
  link.download = "listening-" + TEST.test_id + "-" + state.rater.replace(/[^A-Za-z0-9_.-]+/g, "_") + ".csv";
  document.body.appendChild(link); link.click(); link.remove();
  status.textContent = "Exported " + (lines.length - 1) + " answers to " + link.download +
    ". Send this file to the experimenter.";
  return csv;
}

const rater = document.getElementById("rater");
rater.value = state.rater;
rater.addEventListener("input", () => { state.rater = rater.value.trim(); save(); });
TEST.questions.forEach(q => { q.mos = q.choices.every(c => /^[1-5]$/.test(c[0])); });
buildPart1();
buildPart2();
const start = document.getElementById("start-part2");
if (start) start.addEventListener("click", () => { state.part2 = true; save(); update(); });
document.getElementById("export").addEventListener("click", exportCsv);
update();
"""


def render_page(data: dict, media: dict[str, str]) -> str:
    """The page's HTML. `data`: test id, title, questions, item ids in order, timbre pairs, the obfuscated map
    (build.build_test); `media`: item id -> data URI of its mp4."""
    part1 = [q for q in data["questions"] if q["part"] == 1]
    part2 = [q for q in data["questions"] if q["part"] == 2]
    n = len(data["items"])
    sections = []
    for k, item in enumerate(data["items"], 1):
        sections.append(
            f'<section class="item" data-item="{item}"><h3>Video {k} of {n}</h3>'
            f'<video id="v-{item}" controls preload="metadata" playsinline src="{media[item]}"></video></section>'
        )
    part2_html = ""
    if part2 and data["timbre"]:
        part2_html = (
            '<p><button id="start-part2" disabled>Start part 2 (your part 1 answers are then locked)</button></p>'
            '<div id="part2" hidden><h2>Part 2: timbre</h2>'
            f"<p>{html.escape(part2[0]['prompt'])} Each pair has its own target.</p>"
            '<div id="pairs"></div></div>'
        )
    questions_list = "".join(
        f"<li><b>{html.escape(q['title'])}</b>: {html.escape(q['prompt'])}</li>" for q in part1 + part2
    )
    # "</" cannot appear inside the JSON script element: JSON escapes it.
    payload = json.dumps(data).replace("</", "<\\/")
    title = html.escape(data["title"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{_STYLE}</style></head>
<body>
<header><h1>{title}</h1>
<p>Use headphones in a quiet room. Watch each video with its sound (play it as often as you like) and answer
every question about it. Your answers are kept in this browser as you go, so you can close the page and come back.
When you are done, press <i>Export answers (CSV)</i> and send the downloaded file back.</p>
<ul>{questions_list}</ul>
</header>
<div id="bar"><label>Your rater id: <input id="rater" autocomplete="off" placeholder="e.g. your initials"></label>
<button id="export">Export answers (CSV)</button> <span id="progress"></span> <span id="export-status"></span></div>
<div id="part1"><h2>Part 1</h2>{"".join(sections)}</div>
{part2_html}
<script type="application/json" id="v2s-test">{payload}</script>
<script>{_SCRIPT}</script>
</body></html>
"""

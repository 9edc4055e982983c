// The page of `resnet serve` (GET /), served from memory: pick, drop or paste an image, see
// it, or take a frame from the camera where the browser allows (navigator.mediaDevices on a
// secure origin: localhost counts), and the model's top-5 with bars and the time taken; for a
// detector, its boxes drawn over the image (an SVG in the image's pixels, labels and scores
// on the boxes) and listed below, at the score chosen. The camera starts only on a click and
// stops on the second. No CDN, no framework: one HTML string and one script (GET /app.js, so
// the CSP can forbid inline script). Keyboard: the file button, the model select and the
// score are ordinary controls; the drop zone is a labelled button; each detection in the
// list takes focus and outlines its box.

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>resnet serve</title>
<style>
  :root { color-scheme: light dark; --fg: #1b1f24; --bg: #fafafa; --muted: #5b6470; --bar: #2f6fde; --line: #c9ced6; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e7e9ec; --bg: #16181c; --muted: #a2a9b3; --bar: #5b93ff; --line: #3a3f47; } }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin: 0; font: 16px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  main { max-width: 46rem; margin: 0 auto; padding: 1rem; }
  h1 { font-size: 1.4rem; margin: .2rem 0 1rem; }
  .row { display: flex; flex-wrap: wrap; gap: .6rem; align-items: center; margin-bottom: .8rem; }
  label, select, input, button { font: inherit; }
  select, input[type=password] { padding: .35rem; min-width: 10rem; }
  #drop { display: block; width: 100%; border: 2px dashed var(--line); border-radius: .6rem; padding: 1.4rem; text-align: center; color: var(--muted); background: transparent; cursor: pointer; }
  #drop.over, #drop:focus-visible { border-color: var(--bar); outline: none; color: var(--fg); }
  #video { display: block; max-width: 100%; max-height: 22rem; margin: .8rem auto; border-radius: .4rem; }
  #stage { position: relative; width: fit-content; max-width: 100%; margin: .8rem auto; }
  #preview { display: none; max-width: 100%; max-height: 22rem; border-radius: .4rem; }
  #boxes { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; overflow: visible; }
  #boxes rect { fill: none; stroke-width: 2; }
  #boxes rect.hot { stroke-width: 4; }
  #boxes text { paint-order: stroke; stroke: #000; stroke-width: 3px; fill: #fff; font-family: system-ui, sans-serif; }
  #dets li:focus-visible, #dets li:hover { outline: 2px solid var(--bar); outline-offset: 2px; }
  .swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: .2rem; margin-right: .4rem; vertical-align: -.05rem; }
  input[type=number] { padding: .35rem; width: 5.5rem; }
  ol { list-style: none; padding: 0; margin: .8rem 0; }
  li { display: grid; grid-template-columns: minmax(6rem, 14rem) 1fr 4.2rem; gap: .5rem; align-items: center; margin: .3rem 0; }
  .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .track { height: .9rem; background: var(--line); border-radius: .45rem; overflow: hidden; }
  .fill { height: 100%; background: var(--bar); }
  .prob { text-align: right; font-variant-numeric: tabular-nums; }
  #status { color: var(--muted); min-height: 1.5em; }
  #status.error { color: #d23; }
  @media (max-width: 30rem) { li { grid-template-columns: 1fr 3.6rem; } .track { grid-column: 1 / -1; grid-row: 2; } }
</style>
</head>
<body>
<main>
  <h1>resnet serve</h1>
  <div class="row">
    <label for="model">Model</label> <select id="model"></select>
    <label for="token">Token</label> <input id="token" type="password" autocomplete="off" placeholder="if the server has --token">
    <span id="scorebox" hidden><label for="score">Min score</label> <input id="score" type="number" min="0" max="1" step="0.05" value="0.5"></span>
  </div>
  <input id="file" type="file" accept="image/*" hidden>
  <button id="drop" type="button" aria-describedby="status">Choose an image, drop one here, or paste one (Ctrl+V)</button>
  <div class="row" id="camrow" hidden>
    <button id="camera" type="button">Use the camera</button>
    <button id="capture" type="button" hidden>Classify this frame</button>
  </div>
  <video id="video" playsinline muted hidden aria-label="the camera's picture"></video>
  <div id="stage"><img id="preview" alt="the image sent to the model"><svg id="boxes" aria-hidden="true" xmlns="http://www.w3.org/2000/svg"></svg></div>
  <p id="status" role="status" aria-live="polite"></p>
  <ol id="top" aria-label="top-5 classes"></ol>
  <ol id="dets" aria-label="detections" hidden></ol>
</main>
<script src="/app.js"></script>
</body>
</html>
`;

export const PAGE_JS = `'use strict';
// In a function: names such as 'top' and 'status' are the window's at the top level.
(() => {
const $ = (id) => document.getElementById(id);
const model = $('model'), file = $('file'), drop = $('drop'), preview = $('preview'), status = $('status'), top = $('top'), token = $('token');
const camrow = $('camrow'), camera = $('camera'), capture = $('capture'), video = $('video');
const boxes = $('boxes'), dets = $('dets'), score = $('score'), scorebox = $('scorebox');
const SVG = 'http://www.w3.org/2000/svg';
let last = null;
function isDetector() { const o = model.selectedOptions[0]; return !!o && o.dataset.kind === 'detector'; }
function colour(label) { return 'hsl(' + ((label * 47) % 360) + ' 85% 55%)'; }
function clearResults() { top.replaceChildren(); dets.replaceChildren(); boxes.replaceChildren(); }
function showKind() {
  const d = isDetector();
  scorebox.hidden = !d; dets.hidden = !d; top.hidden = d;
  capture.textContent = d ? 'Detect in this frame' : 'Classify this frame';
}
function headers() { return token.value ? { Authorization: 'Bearer ' + token.value } : {}; }
function say(text, error) { status.textContent = text; status.className = error ? 'error' : ''; }
async function loadModels() {
  try {
    const r = await fetch('/v2/models', { headers: headers() });
    const j = await r.json();
    if (!r.ok) { say(j.error || ('HTTP ' + r.status), true); return; }
    model.replaceChildren(...j.models.map((m) => {
      const o = document.createElement('option'); o.value = m.name; o.dataset.kind = m.kind || 'classifier';
      o.textContent = m.name + ' (' + m.arch + (m.kind === 'detector' ? ', detector' : '') + ')';
      return o;
    }));
    showKind();
  } catch (e) { say(String(e), true); }
}
function msText(j, t0) {
  return 'server ' + j.ms.total.toFixed(1) + ' ms (decode ' + j.ms.decode.toFixed(1) + ', queue ' + j.ms.queue.toFixed(1) + ', compute ' + j.ms.compute.toFixed(1) + '); round trip ' + (performance.now() - t0).toFixed(0) + ' ms';
}
function drawDetections(j) {
  boxes.setAttribute('viewBox', '0 0 ' + j.width + ' ' + j.height);
  boxes.setAttribute('preserveAspectRatio', 'none');
  const font = Math.max(8, Math.round(Math.max(j.width, j.height) / 32));
  const rects = [];
  boxes.replaceChildren(...j.detections.map((d, i) => {
    const g = document.createElementNS(SVG, 'g');
    const [x1, y1, x2, y2] = d.box;
    const r = document.createElementNS(SVG, 'rect');
    r.setAttribute('x', x1); r.setAttribute('y', y1); r.setAttribute('width', Math.max(0, x2 - x1)); r.setAttribute('height', Math.max(0, y2 - y1));
    r.setAttribute('stroke', colour(d.label)); r.setAttribute('vector-effect', 'non-scaling-stroke');
    const t = document.createElementNS(SVG, 'text');
    t.setAttribute('x', x1 + 2); t.setAttribute('y', Math.max(font, y1 + font)); t.setAttribute('font-size', font);
    t.textContent = d.name + ' ' + (100 * d.score).toFixed(0) + '%';
    g.append(r, t);
    rects[i] = r;
    return g;
  }));
  dets.replaceChildren(...j.detections.map((d, i) => {
    const li = document.createElement('li'); li.tabIndex = 0;
    li.setAttribute('aria-label', d.name + ', score ' + (100 * d.score).toFixed(1) + '%, box ' + d.box.map((v) => v.toFixed(0)).join(', '));
    const label = document.createElement('span'); label.className = 'label';
    const sw = document.createElement('span'); sw.className = 'swatch'; sw.style.background = colour(d.label);
    label.append(sw, document.createTextNode(d.name)); label.title = d.name + ' (' + d.label + ') at ' + d.box.map((v) => v.toFixed(1)).join(', ');
    const track = document.createElement('span'); track.className = 'track'; track.setAttribute('aria-hidden', 'true');
    const fill = document.createElement('span'); fill.className = 'fill'; fill.style.display = 'block'; fill.style.width = (100 * d.score).toFixed(1) + '%'; fill.style.background = colour(d.label); track.append(fill);
    const prob = document.createElement('span'); prob.className = 'prob'; prob.textContent = (100 * d.score).toFixed(1) + '%';
    li.append(label, track, prob);
    const hot = (on) => rects[i].classList.toggle('hot', on);
    li.addEventListener('focus', () => hot(true)); li.addEventListener('blur', () => hot(false));
    li.addEventListener('mouseenter', () => hot(true)); li.addEventListener('mouseleave', () => hot(false));
    return li;
  }));
}
async function detectIn(blob, t0) {
  const s = score.value === '' ? '0.5' : score.value;
  const r = await fetch('/v1/models/' + encodeURIComponent(model.value) + '/detect?score=' + encodeURIComponent(s), { method: 'POST', headers: { ...headers(), 'Content-Type': 'application/octet-stream' }, body: blob });
  const j = await r.json();
  if (!r.ok) { say(j.error || ('HTTP ' + r.status), true); return; }
  drawDetections(j);
  const n = j.detections.length;
  say((n === 0 ? 'no detections' : n + (n === 1 ? ' detection' : ' detections')) + ' at score >= ' + s + '; ' + msText(j, t0));
}
async function classify(blob) {
  if (!blob) return;
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.style.display = 'block';
  clearResults();
  last = blob;
  const t0 = performance.now();
  if (isDetector()) {
    say('detecting...');
    try { await detectIn(blob, t0); } catch (e) { say(String(e), true); }
    return;
  }
  say('classifying...');
  try {
    const r = await fetch('/v1/models/' + encodeURIComponent(model.value) + '/classify?top=5', { method: 'POST', headers: { ...headers(), 'Content-Type': 'application/octet-stream' }, body: blob });
    const j = await r.json();
    if (!r.ok) { say(j.error || ('HTTP ' + r.status), true); return; }
    top.replaceChildren(...j.top.map((t) => {
      const li = document.createElement('li');
      const label = document.createElement('span'); label.className = 'label'; label.textContent = t.label; label.title = t.label + ' (' + t.index + ')';
      const track = document.createElement('span'); track.className = 'track'; track.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span'); fill.className = 'fill'; fill.style.display = 'block'; fill.style.width = (100 * t.prob).toFixed(1) + '%'; track.append(fill);
      const prob = document.createElement('span'); prob.className = 'prob'; prob.textContent = (100 * t.prob).toFixed(1) + '%';
      li.append(label, track, prob);
      return li;
    }));
    say(msText(j, t0));
  } catch (e) { say(String(e), true); }
}
drop.addEventListener('click', () => file.click());
file.addEventListener('change', () => classify(file.files[0]));
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); classify(e.dataTransfer.files[0]); });
document.addEventListener('paste', (e) => { const f = [...e.clipboardData.files].find((x) => x.type.startsWith('image/')); if (f) classify(f); });
let stream = null;
function stopCamera() {
  for (const t of stream.getTracks()) t.stop();
  stream = null; video.srcObject = null; video.hidden = true; capture.hidden = true; camera.textContent = 'Use the camera';
}
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) camrow.hidden = false;
camera.addEventListener('click', async () => {
  if (stream) { stopCamera(); say('camera off'); return; }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    video.srcObject = stream; video.hidden = false; capture.hidden = false; camera.textContent = 'Stop the camera';
    await video.play();
    say('camera on: "' + capture.textContent + '" sends what it shows');
  } catch (e) { if (stream) stopCamera(); say('camera: ' + (e.message || e.name), true); }
});
capture.addEventListener('click', () => {
  if (!video.videoWidth) { say('camera: no picture yet', true); return; }
  const c = document.createElement('canvas');
  c.width = video.videoWidth; c.height = video.videoHeight;
  c.getContext('2d').drawImage(video, 0, 0);
  c.toBlob((b) => classify(b), 'image/png');
});
token.addEventListener('change', loadModels);
model.addEventListener('change', () => { showKind(); clearResults(); if (last) classify(last); });
score.addEventListener('change', () => { if (last && isDetector()) classify(last); });
loadModels();
})();
`;

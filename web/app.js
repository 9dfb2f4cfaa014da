// zoe serve's page: the recipe form (filled with the model's defaults), the queue with live
// progress from /api/events, and the gallery of finished videos. Plain DOM, no framework:
// text from the server always goes in through textContent, never as HTML.
'use strict';

const token = new URLSearchParams(location.search).get('token');
const withToken = (url) => (token ? url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : url);
const $ = (id) => document.getElementById(id);

const FIELDS = ['prompt', 'negative', 'model', 'sampler', 'schedule', 'width', 'height', 'frames', 'fps', 'steps',
  'cfg', 'shift', 'seed', 'cache', 'cache_threshold'];
const NUMBERS = new Set(['width', 'height', 'frames', 'fps', 'steps', 'cfg', 'shift', 'seed', 'cache_threshold']);
const jobs = new Map();
let defaults = {};

async function api(path, opts = {}) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method: opts.method || (opts.body !== undefined ? 'POST' : 'GET'),
    headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  let value = null;
  try { value = await res.json(); } catch (e) { value = { error: res.statusText }; }
  if (!res.ok) throw new Error(value && value.error ? value.error : res.status + ' ' + res.statusText);
  return value;
}

function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function fillSelect(select, names, value) {
  select.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
  if (value !== undefined && names.includes(value)) select.value = value;
}

// ---- the form ----

async function loadModel(name) {
  const m = await api('/api/models/' + encodeURIComponent(name));
  defaults = m.defaults;
  fillSelect($('f-sampler'), m.samplers, defaults.sampler);
  fillSelect($('f-schedule'), m.schedules, defaults.schedule);
  fillSelect($('f-cache'), m.caches, 'none');
  setForm(defaults, false);
}

// Put a recipe's settings in the form; 'all' also sets prompt, seed and the cache.
function setForm(r, all) {
  for (const k of FIELDS) {
    if (k === 'model') continue;
    if (!all && (k === 'prompt' || k === 'seed')) continue;
    const input = $('f-' + k);
    let v = r[k];
    if (k === 'cache' && typeof v !== 'string') v = all ? 'none' : undefined;
    if (v === undefined || v === null || typeof v === 'object') {
      if (!all) continue;
      v = k === 'cache' ? 'none' : '';
    }
    input.value = v;
  }
}

function readForm() {
  const r = {};
  for (const k of FIELDS) {
    const v = $('f-' + k).value.trim();
    if (v === '') continue;
    if (k === 'cache' && v === 'none') continue;
    if (k === 'negative' && v === defaults.negative) continue;
    r[k] = NUMBERS.has(k) ? Number(v) : v;
  }
  return r;
}

async function submitRecipe(ev) {
  ev.preventDefault();
  $('recipe-error').textContent = '';
  $('render').disabled = true;
  try {
    const e = await api('/api/jobs', { body: readForm() });
    upsert(e);
  } catch (err) {
    $('recipe-error').textContent = err.message;
  } finally {
    $('render').disabled = false;
  }
}

async function submitBoard(ev) {
  ev.preventDefault();
  $('board-error').textContent = '';
  let board;
  try {
    board = JSON.parse($('f-board').value);
  } catch (err) {
    $('board-error').textContent = 'not JSON: ' + err.message;
    return;
  }
  try {
    upsert(await api('/api/jobs', { body: { storyboard: board } }));
  } catch (err) {
    $('board-error').textContent = err.message;
  }
}

const EXAMPLE_BOARD = {
  title: 'Two shapes',
  style: 'on a navy background',
  characters: { hero: 'a red circle', rival: 'a blue square' },
  shots: [
    { prompt: '{hero} moving right', caption: 'the hero runs' },
    { prompt: '{rival} moving right', continuity: 'continue', caption: 'the rival follows' },
    { prompt: '{hero} growing', transition: { type: 'crossfade', frames: 4 }, caption: 'the hero grows' },
  ],
};

function showTab(board) {
  $('recipe').classList.toggle('hidden', board);
  $('board').classList.toggle('hidden', !board);
  $('tab-recipe').classList.toggle('active', !board);
  $('tab-board').classList.toggle('active', board);
  $('tab-recipe').setAttribute('aria-selected', String(!board));
  $('tab-board').setAttribute('aria-selected', String(board));
}

// ---- the queue ----

function fmtSeconds(s) {
  if (!(s >= 0)) return '';
  if (s < 60) return Math.ceil(s) + ' s';
  return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
}

function describe(e) {
  if (e.kind === 'video') return e.recipe && e.recipe.prompt;
  if (e.kind === 'storyboard') return 'storyboard: ' + ((e.board && e.board.title) || (e.board && e.board.shots.length + ' shots'));
  if (e.kind === 'replay') return 'replay of ' + e.replay_of;
  return e.name || 'job ' + e.id;
}

// A job's card is made once and updated in place: a card rebuilt on every progress event
// would swap the Cancel button under the pointer between press and release.
const cards = new Map();

function makeCard(id) {
  const parts = {
    thumb: el('img', { class: 'thumb', alt: '' }),
    title: el('div', { class: 'title' }),
    badge: el('span', { class: 'badge' }),
    what: el('span', { class: 'what' }),
    progress: el('progress', { max: 1 }),
    cancel: el('button', { type: 'button', class: 'danger cancel', text: 'Cancel', onclick: () => cancelJob(id) }),
  };
  const li = el('li', { class: 'job', dataset: { id } }, [
    el('div', { class: 'head' }, [parts.title, parts.cancel]),
    el('div', { class: 'meta' }, [parts.badge, parts.what]),
    parts.progress,
    parts.thumb,
  ]);
  li.parts = parts;
  return li;
}

function updateCard(li, e) {
  const { thumb, title, badge, what, progress, cancel } = li.parts;
  const p = e.progress || {};
  const active = e.state === 'queued' || e.state === 'running';
  li.dataset.state = e.state;
  const text = describe(e) || '';
  if (title.textContent !== text) { title.textContent = text; title.title = text; }
  badge.className = 'badge ' + e.state;
  badge.textContent = e.state;
  let meta = e.state === 'queued' ? 'waiting for its turn' : p.stage || '';
  if (p.stage === 'denoise' && p.steps) meta = 'step ' + p.step + '/' + p.steps;
  if (active && p.eta > 0) meta += ' · ETA ' + fmtSeconds(p.eta);
  if (e.state === 'failed' || e.state === 'canceled') meta = e.error || e.state;
  if (e.kind === 'replay' && e.result) meta = e.result.equal ? 'the same bytes as ' + e.result.of : 'differs from ' + e.result.of;
  if (e.kind === 'storyboard' && e.result) meta = e.result.rendered + ' shots rendered, ' + e.result.reused + ' from the cache';
  what.textContent = meta;
  if (e.state === 'done') { progress.max = 1; progress.value = 1; }
  else if (active && p.stage === 'denoise' && p.steps) { progress.max = p.steps; progress.value = p.step; }
  else if (active) progress.removeAttribute('value');
  else { progress.max = 1; progress.value = 0; }
  const src = e.preview ? withToken(e.preview.url + '?v=' + e.id + '-' + e.preview.step) : '';
  if (src && thumb.getAttribute('src') !== src) thumb.src = src;
  thumb.hidden = !src;
  cancel.hidden = !active;
}

function renderQueue() {
  const list = [...jobs.values()].sort((a, b) => b.id - a.id);
  const active = list.filter((e) => e.state === 'queued' || e.state === 'running');
  const recent = list.filter((e) => !(e.state === 'queued' || e.state === 'running')).slice(0, 6);
  const shown = active.concat(recent);
  const ids = new Set(shown.map((e) => e.id));
  for (const [id, li] of cards) if (!ids.has(id)) { li.remove(); cards.delete(id); }
  const want = shown.map((e) => {
    let li = cards.get(e.id);
    if (!li) { li = makeCard(e.id); cards.set(e.id, li); }
    updateCard(li, e);
    return li;
  });
  const queue = $('queue');
  const now = [...queue.children];
  if (now.length !== want.length || now.some((c, i) => c !== want[i])) queue.replaceChildren(...want);
  $('queue-empty').classList.toggle('hidden', shown.length > 0);
}

// An entry only moves forward: the reply to a submission can arrive after the stream
// already told that the job ended (a storyboard whose shots are all cached ends at once).
const RANK = { queued: 0, running: 1, done: 2, failed: 2, canceled: 2 };
let queueTimer = null;
function upsert(e) {
  const before = jobs.get(e.id);
  if (before && (RANK[e.state] ?? 0) < (RANK[before.state] ?? 0)) return;
  jobs.set(e.id, Object.assign(before || {}, e));
  if (!queueTimer) queueTimer = setTimeout(() => { queueTimer = null; renderQueue(); }, 50);
}

async function cancelJob(id) {
  try {
    await api('/api/jobs/' + id + '/cancel', { body: {} });
  } catch (err) {
    $('recipe-error').textContent = err.message;
  }
}

// ---- the gallery ----

function settingsText(r) {
  if (!r) return '';
  const keys = ['model', 'width', 'height', 'frames', 'fps', 'steps', 'sampler', 'schedule', 'cfg', 'shift', 'seed'];
  return keys.filter((k) => r[k] !== undefined).map((k) => k + ' ' + r[k]).join(' · ');
}

function galleryCard(o) {
  const video = el('video', { src: withToken(o.url), controls: true, loop: true, muted: true, playsinline: true,
    preload: 'metadata', dataset: { name: o.name } });
  video.muted = true;
  const body = el('div', { class: 'body' });
  if (o.storyboard) {
    body.append(el('div', { class: 'prompt', text: o.title || o.name }));
    body.append(el('div', { class: 'shots' }, (o.shots || []).map((s) =>
      el('a', { href: withToken(s.url), target: '_blank', rel: 'noopener', title: s.prompt || '' }, [
        el('span', { class: 'badge ' + (s.cached ? 'cached' : 'rendered'), text: 'shot ' + s.index + (s.cached ? ' cached' : ' rendered') }),
      ]))));
  } else {
    const r = o.recipe || {};
    body.append(el('div', { class: 'prompt', text: r.prompt || o.name }));
    body.append(el('div', { class: 'settings', text: settingsText(r) }));
    body.append(el('div', { class: 'actions' }, [
      el('button', { type: 'button', class: 'use', text: 'Use these settings', onclick: () => { showTab(false); setForm(r, true); $('f-prompt').focus(); } }),
      el('button', { type: 'button', class: 'replay', text: 'Replay', onclick: () => replay(o.name) }),
    ]));
  }
  return el('li', { class: 'card', dataset: { name: o.name } }, [video, body]);
}

async function replay(name) {
  try {
    upsert(await api('/api/replay', { body: { output: name } }));
  } catch (err) {
    $('recipe-error').textContent = err.message;
  }
}

async function refreshGallery() {
  try {
    const { outputs } = await api('/api/outputs');
    const cards = outputs.filter((o) => !o.name.startsWith('replay-')).map(galleryCard);
    $('gallery').replaceChildren(...cards);
    $('gallery-empty').classList.toggle('hidden', cards.length > 0);
  } catch (err) {
    $('gallery-empty').textContent = 'cannot list the outputs: ' + err.message;
  }
}

// ---- live events ----

function listen() {
  const es = new EventSource(withToken('/api/events'));
  const status = $('status');
  es.addEventListener('open', () => { status.textContent = 'live'; status.className = 'status live'; });
  es.addEventListener('error', () => { status.textContent = 'reconnecting…'; status.className = 'status down'; });
  es.addEventListener('hello', (m) => {
    for (const e of JSON.parse(m.data).jobs) upsert(e);
  });
  for (const kind of ['job', 'preview']) es.addEventListener(kind, (m) => upsert(JSON.parse(m.data)));
  es.addEventListener('done', (m) => {
    upsert(JSON.parse(m.data));
    refreshGallery();
  });
}

async function start() {
  $('recipe').addEventListener('submit', submitRecipe);
  $('board').addEventListener('submit', submitBoard);
  $('tab-recipe').addEventListener('click', () => showTab(false));
  $('tab-board').addEventListener('click', () => showTab(true));
  $('defaults').addEventListener('click', () => setForm(defaults, false));
  $('f-model').addEventListener('change', (ev) => loadModel(ev.target.value));
  $('f-board').value = JSON.stringify(EXAMPLE_BOARD, null, 2);
  try {
    const { models } = await api('/api/models');
    const first = models.includes('zoe-tiny') ? 'zoe-tiny' : models[0];
    fillSelect($('f-model'), models, first);
    if (first) await loadModel(first);
  } catch (err) {
    $('recipe-error').textContent = err.message;
  }
  listen();
  refreshGallery();
}

start();

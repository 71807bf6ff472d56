// moodtune web page: write a feeling, see its emotions, get songs, say whether they fit.
"use strict";

const API = (document.querySelector('meta[name="moodtune-api"]')?.content || "").replace(/\/$/, "");
const MAX_CHARS = 500;
// Longer than API Gateway's 30 s integration limit, so its own 503 arrives before this fires.
const REQUEST_TIMEOUT_MS = 35000;
const LABELS = ["joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral"];

const STRINGS = {
  ko: {
    docTitle: "moodtune — 기분으로 찾는 노래",
    docDescription: "지금 기분을 적으면 어울리는 노래를 추천해 드려요.",
    skip: "본문으로 건너뛰기",
    tagline: "지금 기분을 한두 문장으로 적어 보세요. 어울리는 노래를 찾아 드려요.",
    textLabel: "지금 기분은 어때요?",
    placeholder: "예) 시험 끝났다ㅎㅎ 오늘은 그냥 푹 쉬고 싶어",
    help: "Ctrl+Enter(⌘+Enter)로 바로 보낼 수 있어요.",
    overLimit: (max) => `글이 ${max}자를 넘었어요.`,
    underLimit: (max) => `이제 ${max}자 이내예요.`,
    kindLegend: "무엇을 할까요?",
    kindRecommend: "지금 기분에 맞는 노래",
    kindJourney: "기분 전환",
    targetLegend: "어떤 기분이 되고 싶어요?",
    modeLegend: "추천 방식",
    modeDistribution: "감정 분포 전체로",
    modeDominant: "가장 큰 감정으로",
    submit: "노래 추천 받기",
    submitJourney: "기분 전환 노래 받기",
    journeyTitle: "기분이 바뀌어 가는 길",
    journeySongsTitle: "이 순서로 들어 보세요",
    stepLabel: (n, parts) => `${n}번째 노래: ${parts}`,
    stepLead: (label) => label,
    unreachable: (n) => `이 기분에 가까운 노래가 아직 없어서, 갈 수 있는 데까지 ${n}곡만 골랐어요.`,
    stay: "지금 기분과 같은 기분을 골랐어요. 이 기분을 지켜 주는 노래예요.",
    journeyDone: (n, target) => `${emotionName(target)} 쪽으로 가는 노래 ${n}곡을 골랐어요.`,
    seen: (n) => `이번 방문에서 본 노래 ${n}곡은 다시 추천하지 않아요.`,
    restart: "처음부터 다시",
    restarted: "처음부터 다시 시작해요. 본 노래 목록을 비웠어요.",
    tooFewLeft: "새로 들려줄 노래가 부족해요. ‘처음부터 다시’를 눌러 본 노래 목록을 비워 주세요.",
    badTarget: "되고 싶은 기분을 다시 골라 주세요.",
    emotionTitle: "이 글의 감정",
    songsTitle: "어울리는 노래",
    empty: "조건에 맞는 노래를 찾지 못했어요. 추천 방식을 바꿔 보세요.",
    stale: "아래는 이전에 받은 결과예요. 새 글로는 아직 추천을 받지 못했어요.",
    privacy: "이름이나 연락처는 받지 않아요. 적은 글은 추천과 모델 개선에만 쓰이고 기간이 지나면 지워져요.",
    loading: "감정을 읽고 노래를 고르는 중…",
    done: (n) => `노래 ${n}곡을 찾았어요.`,
    none: "감정은 읽었지만 어울리는 노래를 찾지 못했어요.",
    needText: "기분을 한 글자 이상 적어 주세요.",
    tooLong: (max) => `글이 너무 길어요. ${max}자 이하로 줄여 주세요.`,
    badText: "글에 처리할 수 없는 문자가 있어요. 다른 문장으로 적어 주세요.",
    badRequest: "요청이 올바르지 않아요. 페이지를 새로 고친 뒤 다시 시도해 주세요.",
    tooLarge: "보낸 내용이 너무 커요. 글을 줄여 주세요.",
    unsupported: "요청 형식이 맞지 않아요. 페이지를 새로 고쳐 주세요.",
    notFound: "요청한 기능을 찾지 못했어요. 페이지를 새로 고쳐 주세요.",
    recNotFound: "이 추천 기록을 찾지 못했어요. 기간이 지나 지워졌을 수 있으니 새로 추천을 받아 주세요.",
    songNotIn: "이 추천에 없는 노래라서 기록하지 못했어요.",
    notKorean: "moodtune은 한국어 글을 읽어요. 지금 기분을 한국어로 적어 주시면 어울리는 노래를 찾아 드릴게요. (이모지만 적어도 괜찮아요 🙂)",
    tooMany: "요청이 너무 많아요. 잠시 후 다시 시도해 주세요.",
    unavailable: (s) =>
      s ? `서버가 잠시 바빠요. ${s}초 뒤에 다시 시도해 주세요.` : "서버가 잠시 바빠요. 잠시 후 다시 시도해 주세요.",
    server: "잠시 문제가 생겼어요. 잠시 후 다시 시도해 주세요.",
    network: "서버에 연결하지 못했어요. 인터넷 연결을 확인하고 다시 시도해 주세요.",
    timeout: "서버가 너무 오래 답하지 않아요. 잠시 후 다시 시도해 주세요.",
    failed: (status) => `요청을 처리하지 못했어요 (HTTP ${status}).`,
    serverSaid: "서버 메시지",
    dominant: (label, p) => `가장 큰 감정은 ${label} (${p})`,
    similarity: (s) => `일치도 ${s}`,
    why: "노래의 감정",
    yours: "내 글의 감정",
    like: "어울려요",
    dislike: "안 어울려요",
    likeLabel: (t) => `${t}, 어울려요`,
    dislikeLabel: (t) => `${t}, 안 어울려요`,
    saved: "의견이 기록됐어요. 고마워요!",
    model: (v) => `모델 ${v}`,
    langButton: "English",
    langLabel: "Switch to English",
    emotions: { joy: "기쁨", sadness: "슬픔", anger: "분노", fear: "공포", surprise: "놀람", disgust: "혐오", neutral: "중립" },
  },
  en: {
    docTitle: "moodtune — songs for how you feel",
    docDescription: "Write how you feel and get songs that fit.",
    skip: "Skip to content",
    tagline: "Write how you feel in a sentence or two, and get songs that fit.",
    textLabel: "How are you feeling?",
    placeholder: "e.g. Exams are over! I just want to rest today",
    help: "Press Ctrl+Enter (⌘+Enter) to send.",
    overLimit: (max) => `Your text is over ${max} characters.`,
    underLimit: (max) => `Your text is within ${max} characters again.`,
    kindLegend: "What would you like?",
    kindRecommend: "Songs for how I feel",
    kindJourney: "Mood shift",
    targetLegend: "How do you want to feel?",
    modeLegend: "Recommend by",
    modeDistribution: "the whole emotion mix",
    modeDominant: "the strongest emotion",
    submit: "Recommend songs",
    submitJourney: "Plan my mood shift",
    journeyTitle: "How your mood will move",
    journeySongsTitle: "Listen in this order",
    stepLabel: (n, parts) => `Song ${n}: ${parts}`,
    stepLead: (label) => label,
    unreachable: (n) =>
      `No song is close to that feeling yet, so the path goes as far as it can: ${n === 1 ? "1 song" : `${n} songs`}.`,
    stay: "That is how you feel already: these songs keep the mood.",
    journeyDone: (n, target) => `Picked ${n === 1 ? "1 song" : `${n} songs`} toward ${emotionName(target)}.`,
    seen: (n) => (n === 1 ? "1 song you saw in this visit will not be offered again." : `${n} songs you saw in this visit will not be offered again.`),
    restart: "Start over",
    restarted: "Starting over: the songs you saw may come again.",
    tooFewLeft: "Not enough new songs are left. Press “Start over” to forget the songs you saw.",
    badTarget: "Please pick the feeling you want again.",
    emotionTitle: "Emotions in your text",
    songsTitle: "Songs that fit",
    empty: "No song matched. Try the other recommendation mode.",
    stale: "These are earlier results: your latest text did not get an answer yet.",
    privacy: "No names or contact details are collected. Your text is used only for recommendations and model improvement, and is deleted after a while.",
    loading: "Reading your mood and picking songs…",
    done: (n) => (n === 1 ? "Found 1 song." : `Found ${n} songs.`),
    none: "Your mood was read, but no song matched.",
    needText: "Please write at least one character.",
    tooLong: (max) => `Your text is too long: keep it to ${max} characters or fewer.`,
    badText: "Your text contains characters that cannot be read. Please write it differently.",
    badRequest: "The request was not valid. Reload the page and try again.",
    tooLarge: "What you sent is too large. Please shorten your text.",
    unsupported: "The request format was not accepted. Please reload the page.",
    notFound: "That could not be found. Please reload the page.",
    recNotFound: "This recommendation could not be found; it may have expired. Please ask for new songs.",
    songNotIn: "That song is not part of this recommendation, so it was not recorded.",
    notKorean: "moodtune reads Korean. Write how you feel in Korean and it will find songs that fit. (Emoji on their own work too 🙂)",
    tooMany: "Too many requests. Please wait a moment and try again.",
    unavailable: (s) =>
      s ? `The server is busy. Please try again in ${s} seconds.` : "The server is busy. Please try again shortly.",
    server: "Something went wrong on our side. Please try again shortly.",
    network: "Could not reach the server. Check your connection and try again.",
    timeout: "The server took too long to answer. Please try again shortly.",
    failed: (status) => `The request failed (HTTP ${status}).`,
    serverSaid: "Server message",
    dominant: (label, p) => `Strongest emotion: ${label} (${p})`,
    similarity: (s) => `match ${s}`,
    why: "Song",
    yours: "Your text",
    like: "Fits",
    dislike: "Doesn't fit",
    likeLabel: (t) => `${t}: fits`,
    dislikeLabel: (t) => `${t}: doesn't fit`,
    saved: "Feedback recorded. Thank you!",
    model: (v) => `model ${v}`,
    langButton: "한국어",
    langLabel: "한국어로 보기",
    emotions: { joy: "joy", sadness: "sadness", anger: "anger", fear: "fear", surprise: "surprise", disgust: "disgust", neutral: "neutral" },
  },
};

/**
 * Everything the page shows, so a language switch can redraw it all in the other language.
 * status/error hold string keys (not text); feedback maps song_id -> {satisfied, saved, pending, error}
 * for the current recommendation.
 */
const state = {
  lang: "ko",
  last: null,
  stale: false,
  busy: false,
  status: null,
  error: null,
  feedback: new Map(),
  overLimit: false,
  kind: "recommend",
  target: "joy",
  // song_ids shown in this visit, oldest first: sent as exclude (the API takes at most 50)
  shown: [],
  notice: null,
};
const EXCLUDE_MAX = 50;
const JOURNEY_LENGTH = 6;

const $ = (id) => document.getElementById(id);
const t = (key, ...args) => {
  const value = STRINGS[state.lang][key];
  return typeof value === "function" ? value(...args) : value;
};
const say = (info) => t(info.key, ...(info.args || []));
const pct = (p) => `${Math.round(p * 100)}%`;
// Similarities of probability vectors bunch near 1, so they get one decimal.
const pct1 = (p) => `${(Math.round(p * 1000) / 10).toFixed(1)}%`;
const emotionName = (label) => STRINGS[state.lang].emotions[label] || label;
const known = (label) => (LABELS.includes(label) ? label : "neutral");

function topEmotions(scores, n = 2) {
  return Object.entries(scores).sort((a, b) => b[1] - a[1]).slice(0, n);
}

function chips(pairs) {
  const frag = document.createDocumentFragment();
  for (const [label, p] of pairs) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.dataset.label = label;
    chip.style.setProperty("--tint", `var(--${known(label)}-tint)`);
    chip.style.setProperty("--ink", `var(--${known(label)}-ink)`);
    chip.textContent = `${emotionName(label)} ${pct(p)}`;
    frag.append(chip);
  }
  return frag;
}

// ---------------------------------------------------------------- talking to the API

/** A request that got no usable answer; info is {key, args, detail} for the page's strings. */
class ApiFailure extends Error {
  constructor(info) {
    super(info.detail || info.key);
    this.info = info;
  }
}

function retryAfterSeconds(response) {
  const seconds = Number.parseInt(response.headers.get("retry-after") || "", 10);
  return Number.isFinite(seconds) && seconds > 0 && seconds <= 3600 ? seconds : 0;
}

/**
 * Map an error answer ({"message", "errors"?: [{loc, type, msg}]}) to a string of the page.
 * The API's own message (English) goes along as the detail. context: "recommend" or "feedback".
 */
function describeFailure(response, body, context) {
  const detail = body && typeof body.message === "string" ? body.message : "";
  const types = new Set((Array.isArray(body?.errors) ? body.errors : []).map((e) => e && e.type));
  const info = (key, ...args) => ({ key, args, detail });
  switch (response.status) {
    case 400:
      if ([...types].some((type) => typeof type === "string" && type.startsWith("target_"))) return info("badTarget");
      if (types.has("text_too_long")) return info("tooLong", MAX_CHARS);
      if (types.has("text_empty")) return info("needText");
      if (types.has("text_unicode")) return info("badText");
      return info("badRequest");
    case 404:
      return info(context === "feedback" ? "recNotFound" : "notFound");
    case 413:
      return info("tooLarge");
    case 415:
      return info("unsupported");
    case 422:
      if (types.has("text_unreadable")) return info("notKorean");
      if (types.has("too_few_songs")) return info("tooFewLeft");
      return info(context === "feedback" ? "songNotIn" : "badRequest");
    case 429:
      return info("tooMany");
    case 503:
      return info("unavailable", retryAfterSeconds(response));
    default:
      return info(response.status >= 500 ? "server" : "failed", response.status);
  }
}

/** POST JSON and return the answer's JSON; throws ApiFailure for anything else. */
async function postJSON(path, payload, context) {
  let response;
  try {
    response = await fetch(`${API}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(payload),
      signal: typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : undefined,
    });
  } catch (err) {
    // fetch rejects only when no HTTP answer came at all (offline, DNS, reset, or the timeout).
    throw new ApiFailure({ key: err?.name === "TimeoutError" ? "timeout" : "network" });
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    /* not JSON, e.g. a proxy's HTML error page */
  }
  if (!response.ok) throw new ApiFailure(describeFailure(response, body, context));
  if (body === null || typeof body !== "object") throw new ApiFailure({ key: "server" });
  return body;
}

const failureOf = (err) => (err instanceof ApiFailure ? err.info : { key: "server" });

// ---------------------------------------------------------------- drawing the state

function renderStatus() {
  $("status").textContent = state.status ? say(state.status) : "";
}

function renderError() {
  const box = $("error");
  const detail = $("error-detail");
  const info = state.error;
  box.hidden = !info;
  $("error-text").textContent = info ? say(info) : "";
  detail.hidden = !info?.detail;
  detail.replaceChildren();
  if (info?.detail) {
    const message = document.createElement("span");
    message.lang = "en"; // the API speaks English
    message.textContent = info.detail;
    detail.append(`${t("serverSaid")}: `, message);
  }
}

function setBusy(busy) {
  state.busy = busy;
  $("submit").disabled = busy;
  $("results").setAttribute("aria-busy", String(busy));
}

function updateCounter() {
  const n = [...$("text").value.trim().normalize("NFC")].length;
  const over = n > MAX_CHARS;
  $("count").textContent = String(n);
  $("counter").classList.toggle("over", over);
  $("text").setAttribute("aria-invalid", String(over));
  if (over !== state.overLimit) {
    state.overLimit = over;
    $("counter-live").textContent = t(over ? "overLimit" : "underLimit", MAX_CHARS);
  }
}

function renderChart(emotion) {
  const chart = $("chart");
  chart.replaceChildren();
  for (const [label, p] of Object.entries(emotion.scores)) {
    const li = document.createElement("li");
    li.dataset.label = label;
    if (label === emotion.dominant) li.classList.add("lead");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = emotionName(label);
    const track = document.createElement("span");
    track.className = "bar-track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", String(Math.round(p * 100)));
    track.setAttribute("aria-label", emotionName(label));
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.setProperty("--p", String(p));
    bar.style.setProperty("--c", `var(--${known(label)})`);
    track.append(bar);
    const value = document.createElement("span");
    value.className = "pct";
    value.textContent = pct(p);
    li.append(name, track, value);
    chart.append(li);
  }
  $("dominant").textContent = t("dominant", emotionName(emotion.dominant), pct(emotion.scores[emotion.dominant]));
}

function explanation(song, emotion) {
  const ex = song.explanation || {};
  const songTop = ex.song_top || topEmotions(song.scores || {});
  const textTop = ex.text_top || topEmotions(emotion.scores);
  const p = document.createElement("p");
  p.className = "why";
  p.append(`${t("why")}: `, chips(songTop), ` · ${t("yours")}: `, chips(textTop));
  return p;
}

function songNode(songId) {
  return $("songs").querySelector(`li[data-song-id="${CSS.escape(songId)}"]`);
}

/** Draw one song's 👍/👎 state from state.feedback (it survives re-rendering). */
function renderFeedback(node, songId) {
  const entry = state.feedback.get(songId) || {};
  for (const button of node.querySelectorAll(".fb")) {
    const satisfied = button.dataset.satisfied === "true";
    button.disabled = Boolean(entry.pending);
    button.setAttribute("aria-pressed", String(entry.saved === true && entry.satisfied === satisfied));
  }
  const status = node.querySelector(".fb-status");
  status.classList.toggle("failed", Boolean(entry.error));
  status.textContent = entry.error ? say(entry.error) : entry.saved && !entry.pending ? t("saved") : "";
}

function renderSongs(result) {
  const list = $("songs");
  list.replaceChildren();
  $("empty").hidden = result.songs.length > 0;
  result.songs.forEach((song, i) => {
    const node = $("song-template").content.firstElementChild.cloneNode(true);
    node.dataset.songId = song.song_id;
    node.querySelector(".rank").textContent = String(i + 1);
    node.querySelector(".title").textContent = song.title;
    node.querySelector(".artist").textContent = song.artist;
    node.querySelector(".similarity").textContent = t("similarity", pct1(song.similarity));
    node.querySelector(".why").replaceWith(explanation(song, result.emotion));
    const group = node.querySelector(".feedback");
    group.setAttribute("aria-label", song.title);
    for (const button of group.querySelectorAll(".fb")) {
      const satisfied = button.dataset.satisfied === "true";
      button.querySelector(".fb-text").textContent = satisfied ? t("like") : t("dislike");
      button.setAttribute("aria-label", satisfied ? t("likeLabel", song.title) : t("dislikeLabel", song.title));
      button.addEventListener("click", () => sendFeedback(result, song, satisfied));
    }
    list.append(node);
    renderFeedback(node, song.song_id);
  });
}

/** The journey's path: one row per step, the song's seven emotions as one stacked bar. */
function renderPath(journey) {
  const path = $("path");
  path.replaceChildren();
  journey.steps.forEach((step, i) => {
    const li = document.createElement("li");
    li.dataset.step = String(i);
    const number = document.createElement("span");
    number.className = "step-no";
    number.setAttribute("aria-hidden", "true");
    number.textContent = String(i + 1);
    const stack = document.createElement("span");
    stack.className = "stack";
    stack.setAttribute("role", "img");
    const scores = step.song.scores || {};
    const parts = topEmotions(scores, 3).map(([label, p]) => `${emotionName(label)} ${pct(p)}`).join(", ");
    stack.setAttribute("aria-label", t("stepLabel", i + 1, parts));
    for (const label of LABELS) {
      const p = scores[label] || 0;
      if (p <= 0) continue;
      const seg = document.createElement("span");
      seg.className = "seg";
      seg.dataset.label = label;
      seg.style.setProperty("--p", String(p));
      seg.style.setProperty("--c", `var(--${label})`);
      stack.append(seg);
    }
    const lead = document.createElement("span");
    lead.className = "step-lead";
    lead.setAttribute("aria-hidden", "true");
    lead.textContent = emotionName(known(step.song.dominant));
    li.append(number, stack, lead);
    path.append(li);
  });
  const note = $("journey-note");
  const text = !journey.reachable ? t("unreachable", journey.steps.length) : journey.stay ? t("stay") : "";
  note.hidden = !text;
  note.textContent = text;
}

function renderSeen() {
  $("seen").hidden = state.shown.length === 0;
  $("seen-text").textContent = t("seen", state.shown.length);
}

function renderKind() {
  const journey = state.kind === "journey";
  $("mode-set").hidden = journey;
  $("target-set").hidden = !journey;
  $("submit").textContent = t(journey ? "submitJourney" : "submit");
  const targets = $("targets");
  targets.replaceChildren();
  for (const label of LABELS) {
    const wrap = document.createElement("label");
    wrap.className = "target";
    wrap.style.setProperty("--tint", `var(--${label}-tint)`);
    wrap.style.setProperty("--ink", `var(--${label}-ink)`);
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "target";
    input.value = label;
    input.checked = label === state.target;
    input.addEventListener("change", () => {
      state.target = label;
    });
    const name = document.createElement("span");
    name.textContent = emotionName(label);
    wrap.append(input, name);
    targets.append(wrap);
  }
}

function renderResults() {
  const results = $("results");
  results.hidden = !state.last;
  results.classList.toggle("stale", state.stale);
  $("stale").hidden = !state.stale;
  renderSeen();
  if (!state.last) return;
  const journey = state.last.journey;
  $("journey").hidden = !journey;
  $("songs-title").textContent = t(journey ? "journeySongsTitle" : "songsTitle");
  renderChart(state.last.emotion);
  if (journey) renderPath(journey);
  renderSongs(state.last);
  $("model").textContent = t("model", state.last.model_version);
}

/** A journey's answer in the shape the song list draws (its id is a recommendation id). */
function fromJourney(body) {
  return {
    recommendation_id: body.journey_id,
    model_version: body.model_version,
    emotion: body.emotion,
    songs: body.steps.map((step) => ({ ...step.song, similarity: step.similarity })),
    journey: body,
  };
}

function remember(songs) {
  const seen = new Set(state.shown);
  for (const song of songs) if (!seen.has(song.song_id)) state.shown.push(song.song_id);
  state.shown = state.shown.slice(-EXCLUDE_MAX);
}

function restart() {
  state.shown = [];
  state.last = null;
  state.stale = false;
  state.error = null;
  state.feedback = new Map();
  state.status = { key: "restarted" };
  renderError();
  renderStatus();
  renderResults();
  $("text").focus();
}

// ---------------------------------------------------------------- actions

async function submit() {
  if (state.busy) return;
  const text = $("text").value;
  if (!text.trim()) {
    fail({ key: "needText" });
    $("text").focus();
    return;
  }
  const mode = document.querySelector('input[name="mode"]:checked').value;
  const exclude = [...state.shown];
  state.error = null;
  renderError();
  state.status = { key: "loading" };
  renderStatus();
  setBusy(true);
  try {
    let result;
    if (state.kind === "journey") {
      const payload = { text, target: state.target, length: JOURNEY_LENGTH, exclude };
      result = fromJourney(await postJSON("/v1/journeys", payload, "journey"));
    } else {
      result = await postJSON("/v1/recommendations", { text, mode, limit: 5, exclude }, "recommend");
    }
    state.last = result;
    state.stale = false;
    state.feedback = new Map();
    remember(result.songs);
    if (!result.songs.length) state.status = { key: "none" };
    else if (result.journey) state.status = { key: "journeyDone", args: [result.songs.length, state.target] };
    else state.status = { key: "done", args: [result.songs.length] };
    renderResults();
    renderStatus();
    $("emotion-title").focus();
  } catch (err) {
    fail(failureOf(err));
  } finally {
    setBusy(false);
  }
}

/** A submit that got no answer: say why, and mark any earlier results as earlier. */
function fail(info) {
  state.error = info;
  state.status = null;
  state.stale = state.last !== null;
  renderError();
  renderStatus();
  renderResults();
}

async function sendFeedback(result, song, satisfied) {
  const id = result.recommendation_id;
  const before = state.feedback.get(song.song_id) || {};
  const update = (entry) => {
    if (state.last?.recommendation_id !== id) return; // a newer recommendation replaced this one
    state.feedback.set(song.song_id, entry);
    const node = songNode(song.song_id);
    if (node) renderFeedback(node, song.song_id);
  };
  update({ ...before, pending: true, error: null });
  try {
    await postJSON(
      `/v1/recommendations/${encodeURIComponent(id)}/feedback`,
      { song_id: song.song_id, satisfied },
      "feedback",
    );
    update({ satisfied, saved: true, pending: false, error: null });
  } catch (err) {
    update({ ...before, pending: false, error: failureOf(err) });
  }
}

function applyLanguage(lang) {
  state.lang = lang;
  document.documentElement.lang = lang;
  document.title = t("docTitle");
  document.querySelector('meta[name="description"]')?.setAttribute("content", t("docDescription"));
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const button = $("lang");
  button.textContent = t("langButton");
  button.setAttribute("aria-label", t("langLabel"));
  button.lang = lang === "ko" ? "en" : "ko";
  $("counter-live").textContent = "";
  renderKind();
  renderStatus();
  renderError();
  renderResults();
  try {
    localStorage.setItem("moodtune-lang", lang);
  } catch (_) {
    /* storage may be disabled */
  }
}

function init() {
  $("mood-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("text").addEventListener("input", updateCounter);
  $("text").addEventListener("keydown", (event) => {
    // While a Korean IME composes a syllable, Enter commits it: never send then.
    if (event.isComposing || event.keyCode === 229) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
    }
  });
  $("lang").addEventListener("click", () => applyLanguage(state.lang === "ko" ? "en" : "ko"));
  for (const radio of document.querySelectorAll('input[name="kind"]')) {
    radio.addEventListener("change", () => {
      state.kind = radio.value;
      renderKind();
    });
  }
  $("restart").addEventListener("click", restart);
  state.kind = document.querySelector('input[name="kind"]:checked')?.value || "recommend";
  renderKind();
  let saved = null;
  try {
    saved = localStorage.getItem("moodtune-lang");
  } catch (_) {
    /* storage may be disabled */
  }
  if (saved === "en") applyLanguage("en");
  updateCounter();
}

document.addEventListener("DOMContentLoaded", init);

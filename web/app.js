// moodtune web page: write a feeling, see its emotions, get songs, say whether they fit.
"use strict";

const API = (document.querySelector('meta[name="moodtune-api"]')?.content || "").replace(/\/$/, "");
const MAX_CHARS = 500;

const STRINGS = {
  ko: {
    skip: "결과로 건너뛰기",
    tagline: "지금 기분을 한두 문장으로 적어 보세요. 어울리는 노래를 찾아 드려요.",
    textLabel: "지금 기분은 어때요?",
    placeholder: "예) 시험 끝났다ㅎㅎ 오늘은 그냥 푹 쉬고 싶어",
    help: "Ctrl+Enter(⌘+Enter)로 바로 보낼 수 있어요.",
    modeLegend: "추천 방식",
    modeDistribution: "감정 분포 전체로",
    modeDominant: "가장 큰 감정으로",
    submit: "노래 추천 받기",
    emotionTitle: "이 글의 감정",
    songsTitle: "어울리는 노래",
    empty: "조건에 맞는 노래를 찾지 못했어요. 추천 방식을 바꿔 보세요.",
    privacy: "이름이나 연락처는 받지 않아요. 적은 글은 추천과 모델 개선에만 쓰이고 기간이 지나면 지워져요.",
    loading: "감정을 읽고 노래를 고르는 중…",
    done: (n) => `노래 ${n}곡을 찾았어요.`,
    needText: "기분을 한 글자 이상 적어 주세요.",
    network: "서버에 연결하지 못했어요. 잠시 후 다시 시도해 주세요.",
    server: "잠시 문제가 생겼어요. 잠시 후 다시 시도해 주세요.",
    dominant: (label, p) => `가장 큰 감정은 ${label} (${p})`,
    similarity: (s) => `일치도 ${s}`,
    why: "노래의 감정",
    yours: "내 글의 감정",
    like: "어울려요",
    dislike: "안 어울려요",
    likeLabel: (t) => `${t}, 어울려요`,
    dislikeLabel: (t) => `${t}, 안 어울려요`,
    saved: "의견이 기록됐어요. 고마워요!",
    saveFailed: "기록하지 못했어요. 다시 눌러 주세요.",
    model: (v) => `모델 ${v}`,
    langButton: "English",
    langLabel: "Switch to English",
    emotions: { joy: "기쁨", sadness: "슬픔", anger: "분노", fear: "공포", surprise: "놀람", disgust: "혐오", neutral: "중립" },
  },
  en: {
    skip: "Skip to results",
    tagline: "Write how you feel in a sentence or two, and get songs that fit.",
    textLabel: "How are you feeling?",
    placeholder: "e.g. Exams are over! I just want to rest today",
    help: "Press Ctrl+Enter (⌘+Enter) to send.",
    modeLegend: "Recommend by",
    modeDistribution: "the whole emotion mix",
    modeDominant: "the strongest emotion",
    submit: "Recommend songs",
    emotionTitle: "Emotions in your text",
    songsTitle: "Songs that fit",
    empty: "No song matched. Try the other recommendation mode.",
    privacy: "No names or contact details are collected. Your text is used only for recommendations and model improvement, and is deleted after a while.",
    loading: "Reading your mood and picking songs…",
    done: (n) => `Found ${n} songs.`,
    needText: "Please write at least one character.",
    network: "Could not reach the server. Please try again shortly.",
    server: "Something went wrong on our side. Please try again shortly.",
    dominant: (label, p) => `Strongest emotion: ${label} (${p})`,
    similarity: (s) => `match ${s}`,
    why: "Song",
    yours: "Your text",
    like: "Fits",
    dislike: "Doesn't fit",
    likeLabel: (t) => `${t}: fits`,
    dislikeLabel: (t) => `${t}: doesn't fit`,
    saved: "Feedback recorded. Thank you!",
    saveFailed: "Could not record it. Please try again.",
    model: (v) => `model ${v}`,
    langButton: "한국어",
    langLabel: "한국어로 보기",
    emotions: { joy: "joy", sadness: "sadness", anger: "anger", fear: "fear", surprise: "surprise", disgust: "disgust", neutral: "neutral" },
  },
};

const state = { lang: "ko", last: null, busy: false };
const $ = (id) => document.getElementById(id);
const t = (key, ...args) => {
  const value = STRINGS[state.lang][key];
  return typeof value === "function" ? value(...args) : value;
};
const pct = (p) => `${Math.round(p * 100)}%`;
// Similarities of probability vectors bunch near 1, so they get one decimal.
const pct1 = (p) => `${(Math.round(p * 1000) / 10).toFixed(1)}%`;
const emotionName = (label) => STRINGS[state.lang].emotions[label] || label;

function topEmotions(scores, n = 2) {
  return Object.entries(scores).sort((a, b) => b[1] - a[1]).slice(0, n);
}

function chips(pairs) {
  const frag = document.createDocumentFragment();
  for (const [label, p] of pairs) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.setProperty("--c", `var(--${label})`);
    chip.textContent = `${emotionName(label)} ${pct(p)}`;
    frag.append(chip);
  }
  return frag;
}

/** Read the API's error body as words: {"message", "errors"?: [...]}. */
async function errorMessage(response) {
  try {
    const body = await response.json();
    const detail = Array.isArray(body.errors) && body.errors.length
      ? body.errors.map((e) => (typeof e === "string" ? e : e.msg || e.message || "")).filter(Boolean).join(" · ")
      : "";
    if (body.message) return detail && !body.message.includes(detail) ? `${body.message} (${detail})` : body.message;
  } catch (_) {
    /* not JSON: fall through */
  }
  return response.status >= 500 ? t("server") : `HTTP ${response.status}`;
}

async function postJSON(path, payload) {
  return fetch(`${API}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(payload),
  });
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function setBusy(busy) {
  state.busy = busy;
  $("submit").disabled = busy;
  $("results").setAttribute("aria-busy", String(busy));
  $("status").textContent = busy ? t("loading") : "";
}

function updateCounter() {
  const n = [...$("text").value.trim().normalize("NFC")].length;
  $("count").textContent = String(n);
  $("counter").classList.toggle("over", n > MAX_CHARS);
}

async function submit() {
  if (state.busy) return;
  const text = $("text").value;
  showError("");
  if (!text.trim()) {
    showError(t("needText"));
    $("text").focus();
    return;
  }
  const mode = document.querySelector('input[name="mode"]:checked').value;
  setBusy(true);
  try {
    const response = await postJSON("/v1/recommendations", { text, mode, limit: 5 });
    if (!response.ok) {
      showError(await errorMessage(response));
      return;
    }
    state.last = await response.json();
    render(state.last);
    $("status").textContent = t("done", state.last.songs.length);
    $("results").focus();
  } catch (_) {
    showError(t("network"));
  } finally {
    setBusy(false);
    if (state.last) $("status").textContent = t("done", state.last.songs.length);
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
    bar.style.setProperty("--c", `var(--${label})`);
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
      button.setAttribute("aria-pressed", String(song._satisfied === satisfied));
      button.addEventListener("click", () => sendFeedback(result, song, satisfied, node));
    }
    list.append(node);
  });
}

function render(result) {
  $("results").hidden = false;
  renderChart(result.emotion);
  renderSongs(result);
  $("model").textContent = t("model", result.model_version);
}

async function sendFeedback(result, song, satisfied, node) {
  const status = node.querySelector(".fb-status");
  const buttons = node.querySelectorAll(".fb");
  buttons.forEach((b) => (b.disabled = true));
  status.classList.remove("failed");
  try {
    const response = await postJSON(
      `/v1/recommendations/${encodeURIComponent(result.recommendation_id)}/feedback`,
      { song_id: song.song_id, satisfied },
    );
    if (!response.ok) throw new Error(await errorMessage(response));
    song._satisfied = satisfied;
    buttons.forEach((b) => b.setAttribute("aria-pressed", String((b.dataset.satisfied === "true") === satisfied)));
    status.textContent = t("saved");
  } catch (err) {
    status.classList.add("failed");
    status.textContent = err instanceof Error && err.message && !err.message.startsWith("Failed") ? err.message : t("saveFailed");
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function applyLanguage(lang) {
  state.lang = lang;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const button = $("lang");
  button.textContent = t("langButton");
  button.setAttribute("aria-label", t("langLabel"));
  button.lang = lang === "ko" ? "en" : "ko";
  if (state.last) {
    render(state.last);
    $("status").textContent = t("done", state.last.songs.length);
  }
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
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
    }
  });
  $("lang").addEventListener("click", () => applyLanguage(state.lang === "ko" ? "en" : "ko"));
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

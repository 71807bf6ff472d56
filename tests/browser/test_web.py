"""The web page in a real browser against the local stack: feeling, chart, songs, feedback, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.local.aws import load_template
from moodtune.labels import KOREAN, LABELS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TEXT = "드디어 시험 끝났다ㅎㅎ 오늘은 친구들이랑 맛있는 거 먹으러 간다!"
RECOMMEND = "**/v1/recommendations"
FEEDBACK = "**/v1/recommendations/*/feedback"

# WCAG 2.x contrast of every text element that the answer draws, against its effective background.
CONTRAST_JS = """
(selector) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let out = { r: 255, g: 255, b: 255 };
    for (const c of layers.reverse()) {
      const mix = (k) => c[k] * c.a + out[k] * (1 - c.a);
      out = { r: mix("r"), g: mix("g"), b: mix("b") };
    }
    return out;
  };
  return [...document.querySelectorAll(selector)].filter((el) => el.textContent.trim()).map((el) => {
    const fg = parse(getComputedStyle(el).color);
    const [hi, lo] = [lum(fg), lum(background(el))].sort((a, b) => b - a);
    return { text: el.textContent.trim(), cls: el.className, ratio: (hi + 0.05) / (lo + 0.05) };
  });
}
"""
TEXT_SELECTOR = (
    ".chip, #chart .name, #chart .pct, #dominant, .song .title, .song .artist, .similarity, .rank, "
    ".why, .fb, .fb-status, #status, .tagline, .field-label, .counter, .foot p, .stale-note, "
    ".error-text, .error-detail"
)


def _recommend(page, text: str = TEXT) -> dict[str, Any]:
    """Submit a feeling through the page; return the API's answer as the page received it."""
    page.fill("#text", text)
    with page.expect_response(lambda r: r.url.endswith("/v1/recommendations")) as response:
        page.click("#submit")
    assert response.value.status == 201
    page.wait_for_selector("#songs li.song")
    return response.value.json()


def _wait_feedback_status(page, index: int = 0) -> None:
    page.wait_for_function(
        "(i) => { const s = document.querySelectorAll('#songs li.song .fb-status')[i];"
        " return s && s.textContent.length > 0; }",
        arg=index,
    )


def test_feeling_shows_chart_songs_and_records_feedback(page, stack, artifacts):
    answer = _recommend(page)

    bars = page.locator("#chart li")
    assert bars.count() == len(LABELS)
    assert [bars.nth(i).get_attribute("data-label") for i in range(len(LABELS))] == list(LABELS)
    names = page.locator("#chart .name").all_text_contents()
    assert names == [KOREAN[label] for label in LABELS]
    values = [
        int(v)
        for v in page.locator("#chart .bar-track").evaluate_all(
            "els => els.map(e => e.getAttribute('aria-valuenow'))"
        )
    ]
    assert 97 <= sum(values) <= 103  # a probability distribution, rounded per bar

    songs = page.locator("#songs li.song")
    assert 1 <= songs.count() <= 5
    assert page.locator("#status").inner_text() == f"노래 {songs.count()}곡을 찾았어요."
    # focus moves to the answer's first heading (the status line is the one live announcement)
    assert page.evaluate("document.activeElement.id") == "emotion-title"
    first = songs.first
    assert first.locator(".title").inner_text().strip()
    assert first.locator(".artist").inner_text().strip()
    assert first.locator(".why .chip").count() >= 2
    page.screenshot(path=str(artifacts / "recommendations.png"), full_page=True)

    song_id = first.get_attribute("data-song-id")
    assert song_id == answer["songs"][0]["song_id"]
    first.locator('button.fb[data-satisfied="true"]').click()
    _wait_feedback_status(page)
    assert "기록" in first.locator(".fb-status").inner_text()
    assert first.locator('button.fb[data-satisfied="true"]').get_attribute("aria-pressed") == "true"

    item = stack.feedback_item(answer["recommendation_id"])
    assert item["feedback"][song_id]["satisfied"] is True
    assert item["feedback_day"]


def test_thumbs_down_is_recorded_and_survives_a_language_switch(page, stack):
    answer = _recommend(page)
    index = min(1, len(answer["songs"]) - 1)  # the second song, so not only the first one works
    song = page.locator("#songs li.song").nth(index)
    song_id = song.get_attribute("data-song-id")
    song.locator('button.fb[data-satisfied="false"]').click()
    _wait_feedback_status(page, index)
    assert stack.feedback_item(answer["recommendation_id"])["feedback"][song_id]["satisfied"] is False

    assert page.title().startswith("moodtune — 기분")
    page.click("#lang")
    song = page.locator(f'#songs li.song[data-song-id="{song_id}"]')
    assert song.locator(".fb-status").inner_text() == "Feedback recorded. Thank you!"
    assert song.locator('button.fb[data-satisfied="false"]').get_attribute("aria-pressed") == "true"
    assert song.locator('button.fb[data-satisfied="true"]').get_attribute("aria-pressed") == "false"
    assert page.title() == "moodtune — songs for how you feel"
    description = page.get_attribute('meta[name="description"]', "content")
    assert description == "Write how you feel and get songs that fit."
    assert page.locator("#status").inner_text() == (
        f"Found {len(answer['songs'])} songs." if len(answer["songs"]) > 1 else "Found 1 song."
    )

    page.click("#lang")
    assert page.title() == "moodtune — 기분으로 찾는 노래"
    assert "추천" in (page.get_attribute('meta[name="description"]', "content") or "")
    assert "기록" in song.locator(".fb-status").inner_text()


@pytest.mark.parametrize(("keys", "mode"), [("Control+Enter", "dominant"), ("Meta+Enter", "distribution")])
def test_keyboard_shortcut_submits_with_the_chosen_mode(page, keys, mode):
    page.check(f'input[name="mode"][value="{mode}"]')
    page.fill("#text", "비 오는 날 혼자 집에 있으니까 괜히 눈물 나ㅠㅠ")
    with page.expect_request(lambda r: r.url.endswith("/v1/recommendations") and r.method == "POST") as req:
        page.press("#text", keys)
    assert req.value.post_data_json["mode"] == mode
    page.wait_for_selector("#chart li")
    assert page.locator("#dominant").inner_text().strip()


def test_enter_while_the_ime_composes_does_not_submit(page):
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/v1/" in r.url else None)
    page.fill("#text", "오늘은 좀 피곤하다")
    # What a Korean IME sends while a syllable is being composed: isComposing, or keyCode 229.
    statuses = page.evaluate(
        """() => [{ isComposing: true }, { keyCode: 229 }].map((extra) => {
             const event = new KeyboardEvent("keydown",
               { key: "Enter", ctrlKey: true, bubbles: true, cancelable: true, ...extra });
             if (extra.keyCode && event.keyCode !== 229) throw new Error("keyCode not settable");
             document.getElementById("text").dispatchEvent(event);
             return document.getElementById("status").textContent;
           })"""
    )
    assert statuses == ["", ""]
    page.wait_for_timeout(200)
    assert sent == []
    with page.expect_request(lambda r: r.url.endswith("/v1/recommendations")):
        page.press("#text", "Control+Enter")


def test_over_long_text_is_told_in_korean_and_marks_earlier_results(page, artifacts):
    _recommend(page)
    assert "찾았어요" in page.locator("#status").inner_text()

    page.fill("#text", "가" * 501)
    assert "over" in (page.get_attribute("#counter", "class") or "")
    assert page.get_attribute("#text", "aria-invalid") == "true"
    assert page.locator("#counter-live").inner_text() == "글이 500자를 넘었어요."
    with page.expect_response(lambda r: r.url.endswith("/v1/recommendations")) as resp:
        page.click("#submit")
    assert resp.value.status == 400
    body = resp.value.json()
    assert any(e["type"] == "text_too_long" for e in body["errors"])
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert page.locator("#error-text").inner_text() == "글이 너무 길어요. 500자 이하로 줄여 주세요."
    assert body["message"] in page.locator("#error-detail").inner_text()
    assert page.locator("#error-detail [lang=en]").inner_text() == body["message"]
    # the earlier answer is no longer presented as the current one
    assert page.locator("#status").inner_text() == ""
    assert page.locator("#stale").is_visible()
    assert "stale" in (page.get_attribute("#results", "class") or "")
    page.screenshot(path=str(artifacts / "error.png"), full_page=True)

    page.click("#lang")
    assert page.locator("#error-text").inner_text() == (
        "Your text is too long: keep it to 500 characters or fewer."
    )
    assert page.locator("#stale").inner_text().startswith("These are earlier results")

    page.fill("#text", "가" * 499)
    assert page.locator("#counter-live").inner_text() == "Your text is within 500 characters again."
    _recommend(page, "오늘 하루 정말 좋았어")
    assert page.locator("#error").is_hidden()
    assert page.locator("#stale").is_hidden()


def test_text_without_korean_is_told_kindly_in_both_languages(page, artifacts):
    """The real stack answers 422 text_unreadable for English; the page says moodtune reads Korean."""
    page.fill("#text", "I am so happy today")
    with page.expect_response(lambda r: r.url.endswith("/v1/recommendations")) as resp:
        page.click("#submit")
    assert resp.value.status == 422
    assert [e["type"] for e in resp.value.json()["errors"]] == ["text_unreadable"]
    page.locator("#error").wait_for(state="visible")
    assert page.locator("#error-text").inner_text().startswith("moodtune은 한국어 글을 읽어요.")
    page.screenshot(path=str(artifacts / "not-korean.png"), full_page=True)
    page.click("#lang")
    assert page.locator("#error-text").inner_text().startswith("moodtune reads Korean.")
    page.click("#lang")
    _recommend(page, "🙂")
    assert page.locator("#error").is_hidden()


def test_counter_speaks_only_when_crossing_the_limit(page):
    assert page.get_attribute("#counter", "aria-live") is None
    page.fill("#text", "가" * 10)
    page.fill("#text", "가" * 499)
    assert page.locator("#counter-live").inner_text() == ""
    assert page.locator("#count").inner_text() == "499"
    page.fill("#text", "가" * 501)
    assert page.locator("#counter-live").inner_text() == "글이 500자를 넘었어요."


def test_empty_text_is_refused_before_any_request(page):
    requests_made: list[str] = []
    page.on("request", lambda r: requests_made.append(r.url) if "/v1/" in r.url else None)
    page.fill("#text", "   ")
    page.click("#submit")
    assert page.locator("#error").is_visible()
    assert page.locator("#error-text").inner_text() == "기분을 한 글자 이상 적어 주세요."
    assert requests_made == []


def test_loading_state_is_busy_until_the_answer_arrives(page):
    held: list[Any] = []
    page.route(RECOMMEND, lambda route: held.append(route))
    page.fill("#text", TEXT)
    page.click("#submit")
    page.wait_for_function("() => document.getElementById('submit').disabled")
    assert len(held) == 1
    assert page.get_attribute("#results", "aria-busy") == "true"
    assert page.locator("#status").inner_text() == "감정을 읽고 노래를 고르는 중…"
    held[0].continue_()
    page.wait_for_selector("#songs li.song")
    assert page.get_attribute("#results", "aria-busy") == "false"
    assert page.locator("#submit").is_enabled()
    assert "찾았어요" in page.locator("#status").inner_text()


def test_an_answer_without_songs_shows_the_empty_state(page):
    def no_songs(route):
        answer = route.fetch()
        route.fulfill(response=answer, json={**answer.json(), "songs": []})

    page.route(RECOMMEND, no_songs)
    page.fill("#text", TEXT)
    page.click("#submit")
    page.locator("#empty").wait_for(state="visible")
    assert page.locator("#songs li").count() == 0
    assert page.locator("#chart li").count() == len(LABELS)
    assert page.locator("#status").inner_text() == "감정은 읽었지만 어울리는 노래를 찾지 못했어요."


def _fulfil(status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None):
    def handler(route):
        if body is None:
            route.abort("internetdisconnected")
        else:
            route.fulfill(status=status, json=body, headers=headers or {})

    return handler


@pytest.mark.parametrize(
    ("handler", "korean", "detail"),
    [
        (_fulfil(0, None), "서버에 연결하지 못했어요", None),
        (_fulfil(503, {"message": "store busy"}, {"Retry-After": "7"}), "7초 뒤에", "store busy"),
        (_fulfil(502, {"message": "Bad Gateway"}), "잠시 문제가 생겼어요", "Bad Gateway"),
        (_fulfil(429, {"message": "Too Many Requests"}), "요청이 너무 많아요", "Too Many Requests"),
        (_fulfil(413, {"message": "request body is 20000 bytes"}), "너무 커요", "20000 bytes"),
        (_fulfil(415, {"message": "content type"}), "요청 형식이 맞지 않아요", "content type"),
        # a message that starts with "Failed" is still the API's message, not a network error
        (_fulfil(400, {"message": "Failed: limit"}), "요청이 올바르지 않아요", "Failed: limit"),
    ],
    ids=["network", "503", "502", "429", "413", "415", "400-Failed"],
)
def test_errors_the_stack_cannot_produce_are_told_in_korean(page, handler, korean, detail):
    page.route(RECOMMEND, handler)
    page.fill("#text", TEXT)
    page.click("#submit")
    page.locator("#error").wait_for(state="visible")
    assert korean in page.locator("#error-text").inner_text()
    if detail is None:
        assert page.locator("#error-detail").is_hidden()
    else:
        assert detail in page.locator("#error-detail").inner_text()
    assert page.locator("#submit").is_enabled()
    assert page.locator("#results").is_hidden()


@pytest.mark.parametrize(
    ("handler", "korean"),
    [
        (_fulfil(0, None), "서버에 연결하지 못했어요"),
        (_fulfil(404, {"message": "recommendation not found"}), "추천 기록을 찾지 못했어요"),
        (_fulfil(422, {"message": "song not in recommendation"}), "이 추천에 없는 노래"),
    ],
    ids=["network", "404", "422"],
)
def test_feedback_failures_are_told_beside_the_song(page, handler, korean):
    _recommend(page)
    page.route(FEEDBACK, handler)
    first = page.locator("#songs li.song").first
    first.locator('button.fb[data-satisfied="true"]').click()
    _wait_feedback_status(page)
    status = first.locator(".fb-status")
    assert korean in status.inner_text()
    assert "failed" in (status.get_attribute("class") or "")
    assert first.locator('button.fb[data-satisfied="true"]').get_attribute("aria-pressed") == "false"
    assert first.locator('button.fb[data-satisfied="true"]').is_enabled()


def test_accessible_structure_and_keyboard_order(page):
    assert page.locator("label[for=text]").count() == 1
    assert page.locator("input[name=name], input[type=tel], input[type=email]").count() == 0
    # one announcement per answer: the status line, not the whole results section
    assert page.get_attribute("#results", "aria-live") is None
    assert page.get_attribute("#status", "role") == "status"
    assert page.get_attribute("#error", "role") == "alert"

    # the skip link is the first stop and lands before the text field, which exists from the start
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    target = page.get_attribute(".skip", "href")
    assert page.locator(target).is_visible()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "text"
    # then the kind radios (recommend / mood shift), the two mode radios (one tab stop each) and the button
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "kind"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "mode"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "submit"

    page.click("#lang")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#submit").inner_text() == "Recommend songs"
    assert page.locator(".skip").inner_text() == "Skip to content"
    _recommend(page, "내일 발표인데 너무 떨려서 잠이 안 와")
    assert page.locator("#chart .name").all_text_contents() == list(LABELS)


def test_every_chip_and_label_is_readable(page):
    """WCAG AA (4.5:1) for the text of an answer whose chips use all seven emotion colours."""

    def all_labels(route):
        answer = route.fetch()
        body = answer.json()
        for song in body["songs"]:
            song["explanation"]["song_top"] = [[label, 1 / len(LABELS)] for label in LABELS]
        route.fulfill(response=answer, json=body)

    page.route(RECOMMEND, all_labels)
    _recommend(page)
    page.unroute(RECOMMEND)
    page.locator("#songs li.song").first.locator('button.fb[data-satisfied="true"]').click()
    _wait_feedback_status(page)
    page.fill("#text", "가" * 501)
    page.click("#submit")
    page.locator("#stale").wait_for(state="visible")

    measured = page.evaluate(CONTRAST_JS, TEXT_SELECTOR)
    chip_labels = set(page.locator(".chip").evaluate_all("els => els.map(e => e.dataset.label)"))
    assert chip_labels == set(LABELS)
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, json.dumps(low, ensure_ascii=False)
    assert len(measured) > 40


def test_page_runs_under_the_cloudfront_content_security_policy(open_page):
    config = load_template(ROOT / "template.yaml")["Resources"]["WebSecurityHeaders"]["Properties"]
    csp = config["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    policy = csp["ContentSecurityPolicy"]

    def with_headers(page):
        def add_csp(route):
            answer = route.fetch()
            route.fulfill(response=answer, headers={**answer.headers, "content-security-policy": policy})

        page.route(lambda url: url.endswith("/"), add_csp)
        page.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation',"
            " (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    page = open_page(before=with_headers)
    _recommend(page)
    page.locator("#songs li.song").first.locator('button.fb[data-satisfied="true"]').click()
    _wait_feedback_status(page)
    assert "기록" in page.locator("#songs li.song .fb-status").first.inner_text()
    page.click("#lang")
    assert page.evaluate("window.__violations") == []
    # the policy is in force: an inline script added now is refused and reported
    ran = page.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.__inline = 1";
                   document.body.append(s); return window.__inline === 1; }"""
    )
    assert ran is False
    page.wait_for_function("() => window.__violations.length > 0")
    assert page.evaluate("window.__violations")[0].startswith("script-src")


def test_readable_at_375px(open_page, artifacts):
    page = open_page(width=375, height=812, device_scale_factor=2)
    _recommend(page, "퇴근길에 하늘 보니까 기분 좋아졌어 😊")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    button = page.locator("#submit").bounding_box()
    assert button["width"] <= 375
    boxes = page.locator("#chart li, #chart .name, #chart .pct, #songs li.song, .song .fb").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return { cls: e.className || e.tagName, left: r.left, right: r.right, width: r.width }; })"
    )
    outside = [b for b in boxes if b["left"] < 0 or b["right"] > 375 or b["width"] <= 0]
    assert not outside, outside
    page.screenshot(path=str(artifacts / "mobile-375.png"), full_page=True)

    # English names stay whole words on one line ("surprise", not "surpri|se")
    page.click("#lang")
    lines = page.locator("#chart .name").evaluate_all(
        "els => els.map(e => { const r = document.createRange(); r.selectNodeContents(e);"
        " return [e.textContent, r.getClientRects().length, e.scrollWidth <= e.clientWidth]; })"
    )
    assert [name for name, _, _ in lines] == list(LABELS)
    assert all(count == 1 and fits for _, count, fits in lines), lines
    page.screenshot(path=str(artifacts / "mobile-375-en.png"), full_page=True)


JOURNEYS = "**/v1/journeys"
SAD = "헤어진 지 한 달인데 아직도 네 생각뿐이야 ㅠㅠ"
JOURNEY_SELECTOR = (
    TEXT_SELECTOR + ", .target, #journey-title, .journey-note, .step-no, .step-lead, #seen-text, .restart"
)


def _journey(page, text: str = SAD) -> dict[str, Any]:
    page.fill("#text", text)
    with page.expect_response(lambda r: r.url.endswith("/v1/journeys")) as response:
        page.click("#submit")
    assert response.value.status == 201, response.value.text()
    page.wait_for_selector("#path li")
    return response.value.json()


def _choose_journey(page, target: str) -> None:
    page.check('input[name="kind"][value="journey"]')
    page.check(f'input[name="target"][value="{target}"]')


def test_a_mood_shift_shows_the_path_and_the_songs_in_order_with_feedback(page, stack, artifacts):
    _choose_journey(page, "joy")
    assert page.locator("#mode-set").is_hidden() and page.locator("#target-set").is_visible()
    assert page.locator("#submit").inner_text() == "기분 전환 노래 받기"
    chips = page.locator("#targets label.target")
    assert chips.all_text_contents() == [KOREAN[label] for label in LABELS]
    with page.expect_request(lambda r: r.url.endswith("/v1/journeys")) as request:
        answer = _journey(page)
    sent = request.value.post_data_json
    assert (sent["target"], sent["length"], sent["exclude"]) == ("joy", 6, [])
    steps = answer["steps"]
    assert page.locator("#path li").count() == len(steps) >= 3
    labels = page.locator("#path .stack").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    assert labels[0].startswith("1번째 노래: ")
    ids = page.locator("#songs li.song").evaluate_all("els => els.map(e => e.dataset.songId)")
    assert ids == [s["song"]["song_id"] for s in steps]  # the songs in journey order
    assert page.locator("#journey-title").is_visible()
    assert "쪽으로 가는 노래" in page.locator("#status").inner_text()
    page.screenshot(path=str(artifacts / "journey.png"), full_page=True)

    last = page.locator("#songs li.song").last
    last.locator('button.fb[data-satisfied="true"]').click()
    _wait_feedback_status(page, len(steps) - 1)
    assert "기록" in last.locator(".fb-status").inner_text()
    item = stack.feedback_item(answer["journey_id"])  # journey_id is a recommendation record
    assert item["kind"] == "journey" and item["feedback"][steps[-1]["song"]["song_id"]]["satisfied"] is True

    page.click("#lang")
    assert page.locator("#submit").inner_text() == "Plan my mood shift"
    assert page.locator("#targets label.target").all_text_contents() == list(LABELS)
    assert page.locator("#songs-title").inner_text() == "Listen in this order"
    assert "toward joy" in page.locator("#status").inner_text()


def test_songs_shown_in_this_visit_are_excluded_until_starting_over(page):
    first = _recommend(page)
    shown = [s["song_id"] for s in first["songs"]]
    assert page.locator("#seen").is_visible()
    assert f"{len(shown)}곡" in page.locator("#seen-text").inner_text()
    with page.expect_request(lambda r: r.url.endswith("/v1/recommendations")) as request:
        second = _recommend(page)
    assert request.value.post_data_json["exclude"] == shown
    assert not set(shown) & {s["song_id"] for s in second["songs"]}  # the same feeling, new songs
    _choose_journey(page, "neutral")
    with page.expect_request(lambda r: r.url.endswith("/v1/journeys")) as request:
        _journey(page)
    assert len(request.value.post_data_json["exclude"]) == 10

    page.click("#restart")
    assert page.locator("#seen").is_hidden() and page.locator("#results").is_hidden()
    assert "처음부터" in page.locator("#status").inner_text()
    assert page.evaluate("document.activeElement.id") == "text"
    with page.expect_request(lambda r: r.url.endswith("/v1/journeys")) as request:
        _journey(page)
    assert request.value.post_data_json["exclude"] == []


def test_a_mood_shift_by_keyboard_only(page):
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    page.keyboard.press("Tab")
    page.keyboard.type(SAD)
    page.keyboard.press("Tab")  # the kind radios: the arrow key picks "mood shift"
    assert page.evaluate("document.activeElement.name") == "kind"
    page.keyboard.press("ArrowRight")
    assert page.locator("#target-set").is_visible()
    page.keyboard.press("Tab")  # the target radios, one tab stop; arrows move between feelings
    assert page.evaluate("document.activeElement.name") == "target"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.value") == "sadness"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.value") == "anger"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "submit"
    with page.expect_request(lambda r: r.url.endswith("/v1/journeys")) as request:
        page.keyboard.press("Enter")
    assert request.value.post_data_json["target"] == "anger"
    page.wait_for_selector("#path li")
    assert page.evaluate("document.activeElement.id") == "emotion-title"
    # every 👍/👎 is reachable by Tab
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('fb')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('fb')")


@pytest.mark.parametrize(
    ("status", "body", "korean"),
    [
        (
            422,
            {
                "message": "exclude: too few",
                "errors": [{"loc": ["body", "exclude"], "type": "too_few_songs", "msg": "x"}],
            },
            "새로 들려줄 노래가 부족해요",
        ),
        (
            422,
            {
                "message": "moodtune reads Korean text",
                "errors": [{"loc": ["body", "text"], "type": "text_unreadable", "msg": "x"}],
            },
            "moodtune은 한국어 글을 읽어요",
        ),
        (
            400,
            {
                "message": "target",
                "errors": [{"loc": ["body", "target"], "type": "target_label", "msg": "x"}],
            },
            "되고 싶은 기분을 다시 골라 주세요",
        ),
        (503, {"message": "busy"}, "서버가 잠시 바빠요"),
    ],
)
def test_journey_errors_are_told_kindly(page, status, body, korean):
    page.route(JOURNEYS, _fulfil(status, body))
    _choose_journey(page, "joy")
    page.fill("#text", SAD)
    page.click("#submit")
    page.locator("#error").wait_for(state="visible")
    assert korean in page.locator("#error-text").inner_text()


def test_an_unreachable_target_and_a_stay_are_said(page):
    def rewrite(reachable: bool, stay: bool):
        def handler(route):
            answer = route.fetch()
            data = answer.json()
            data["reachable"], data["stay"] = reachable, stay
            data["steps"] = data["steps"][:3]
            route.fulfill(response=answer, json=data)

        return handler

    page.route(JOURNEYS, rewrite(False, False))
    _choose_journey(page, "fear")
    _journey(page)
    assert "갈 수 있는 데까지 3곡" in page.locator("#journey-note").inner_text()
    page.unroute(JOURNEYS)
    page.route(JOURNEYS, rewrite(True, True))
    page.click("#restart")
    _journey(page)
    assert "이 기분을 지켜 주는 노래" in page.locator("#journey-note").inner_text()


def test_journey_text_is_readable_and_fits_at_375px(open_page, artifacts):
    page = open_page(width=375, height=812, device_scale_factor=2)
    _choose_journey(page, "joy")
    _journey(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    boxes = page.locator(
        "#path li, #path .stack, #targets label.target, #songs li.song, .song .fb, #restart"
    ).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return { cls: e.className || e.tagName, left: r.left, right: r.right, width: r.width }; })"
    )
    outside = [b for b in boxes if b["left"] < 0 or b["right"] > 375 or b["width"] <= 0]
    assert not outside, outside
    measured = page.evaluate(CONTRAST_JS, JOURNEY_SELECTOR)
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, json.dumps(low, ensure_ascii=False)
    page.screenshot(path=str(artifacts / "journey-375.png"), full_page=True)
    page.click("#lang")
    page.screenshot(path=str(artifacts / "journey-375-en.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0

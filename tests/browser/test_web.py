"""The web page in a real browser against the local stack: feeling, chart, songs, feedback."""

from __future__ import annotations

import pytest

from moodtune.labels import KOREAN, LABELS

pytestmark = pytest.mark.browser

TEXT = "드디어 시험 끝났다ㅎㅎ 오늘은 친구들이랑 맛있는 거 먹으러 간다!"


def _recommend(page, text: str = TEXT) -> dict:
    """Submit a feeling through the page; return the API's answer as the page received it."""
    page.fill("#text", text)
    with page.expect_response(lambda r: r.url.endswith("/v1/recommendations")) as response:
        page.click("#submit")
    assert response.value.status == 201
    page.wait_for_selector("#songs li.song")
    return response.value.json()


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
    first = songs.first
    assert first.locator(".title").inner_text().strip()
    assert first.locator(".artist").inner_text().strip()
    assert first.locator(".why .chip").count() >= 2
    page.screenshot(path=str(artifacts / "recommendations.png"), full_page=True)

    song_id = first.get_attribute("data-song-id")
    assert song_id == answer["songs"][0]["song_id"]
    first.locator('button.fb[data-satisfied="true"]').click()
    page.wait_for_function("() => document.querySelector('#songs li.song .fb-status').textContent.length > 0")
    assert "기록" in first.locator(".fb-status").inner_text()
    assert first.locator('button.fb[data-satisfied="true"]').get_attribute("aria-pressed") == "true"

    item = stack.feedback_item(answer["recommendation_id"])
    assert item["feedback"][song_id]["satisfied"] is True
    assert item["feedback_day"]


def test_ctrl_enter_submits_and_mode_switch_is_sent(page):
    page.check('input[name="mode"][value="dominant"]')
    page.fill("#text", "비 오는 날 혼자 집에 있으니까 괜히 눈물 나ㅠㅠ")
    with page.expect_request(lambda r: r.url.endswith("/v1/recommendations") and r.method == "POST") as req:
        page.press("#text", "Control+Enter")
    assert req.value.post_data_json["mode"] == "dominant"
    page.wait_for_selector("#chart li")
    assert page.locator("#dominant").inner_text().strip()


def test_over_long_text_shows_the_api_message(page):
    page.fill("#text", "가" * 501)
    assert "over" in (page.get_attribute("#counter", "class") or "")
    with page.expect_response(lambda r: r.url.endswith("/v1/recommendations")) as resp:
        page.click("#submit")
    assert 400 <= resp.value.status < 500
    message = resp.value.json()["message"]
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert message in error.inner_text()
    assert "500" in error.inner_text()
    assert page.locator("#songs li").count() == 0


def test_empty_text_is_refused_before_any_request(page):
    requests_made: list[str] = []
    page.on("request", lambda r: requests_made.append(r.url) if "/v1/" in r.url else None)
    page.fill("#text", "   ")
    page.click("#submit")
    assert page.locator("#error").is_visible()
    assert requests_made == []


def test_english_switch_and_accessible_structure(page):
    assert page.locator("label[for=text]").count() == 1
    assert page.locator("#results").get_attribute("aria-live") == "polite"
    assert page.locator("input[name=name], input[type=tel]").count() == 0
    page.click("#lang")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#submit").inner_text() == "Recommend songs"
    _recommend(page, "내일 발표인데 너무 떨려서 잠이 안 와")
    assert page.locator("#chart .name").first.inner_text() == "joy"
    # keyboard order: text field, the two mode radios (one tab stop), then the button
    page.focus("#text")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "mode"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "submit"


def test_readable_at_375px(browser, stack, artifacts):
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, locale="ko-KR"
    )
    page = context.new_page()
    page.goto(stack.url + "/")
    _recommend(page, "퇴근길에 하늘 보니까 기분 좋아졌어 😊")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    button = page.locator("#submit").bounding_box()
    assert button["width"] <= 375
    page.screenshot(path=str(artifacts / "mobile-375.png"), full_page=True)
    context.close()

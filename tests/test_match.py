"""Match stage: buyer text -> ranked intents; abstain on noise, ambiguity and negatives."""

import math
from collections import Counter
from pathlib import Path

import pytest

from csbot.library import Intent, Library, LibrarySet, load_libraries
from csbot.match import (
    NEGATIVE_PENALTY,
    NEGATIVE_SLACK,
    NO_FLOOR,
    SHORTLIST_PER_INTENT,
    SOUND_CONTAIN_MIN,
    Candidate,
    Matcher,
    Ranking,
    _Entry,
    _entry_bounds,
    _score,
    _similarity,
    _stem,
    _suppressed,
    split_questions,
)
from csbot.normalize import normalize

LIBRARY_DIR = Path(__file__).resolve().parents[1] / "scripts_library"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_libraries(LIBRARY_DIR))


def rank(matcher: Matcher, text: str) -> Ranking:
    return matcher.rank(normalize(text))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("在吗", "greeting"),
        ("掌柜的在不在", "greeting"),
        ("包郵嗎", "shipping_fee"),  # traditional
        ("包油吗", "shipping_fee"),  # homophone typo
        ("bao you ma", "shipping_fee"),  # typed pinyin reaches the Chinese trigger by sound
        ("能唔能平啲啊", "bargain"),  # Cantonese, read as Mandarin (能不能便宜点)
        ("有冇貨呀", "stock"),
        ("运费险怎么赔", "return_refund"),  # the longer trigger 运费险 beats 运费
        ("优惠券领了怎么用不了", "promotion"),
        ("便宜点嘛亲", "bargain"),
        ("什么时候发货呀", "ship_time"),
        ("物流三天没动了", "logistics"),
        ("能用花呗分期吗", "payment"),
        ("这款还有货吗", "stock"),
        ("是纯棉的吗", "product_info"),
        ("地址填错了，帮我改下", "order_change"),
        ("我要退款", "return_refund"),
        ("收到了偏小，能换大一码吗", "exchange"),
        ("收到的杯子碎了", "quality_issue"),
        ("能开电子发票吗", "invoice"),
        ("好的谢谢亲", "closing"),
        ("转人工", "human_agent"),
        ("再不处理我就投诉", "complaint"),
        ("别再给我发消息了", "opt_out"),
        ("human please", "human_agent"),  # English message, English trigger
        ("where is my parcel", "logistics"),
        ("Ｈｅｌｌｏ", "greeting"),
    ],
)
def test_top_intent(matcher: Matcher, text: str, intent: str) -> None:
    ranking = rank(matcher, text)
    assert ranking.top is not None, ranking
    assert ranking.top.intent == intent
    assert ranking.reason == "confident"


@pytest.mark.parametrize(
    "text",
    [
        "嗯嗯",
        "好",
        "111",
        "订单号：4123456789012",
        "www.taobao.com",
        "😅",
        "我去吃个饭",
        "你们公司有多少人",
        "股票跌了",
    ],
)
def test_noise_abstains(matcher: Matcher, text: str) -> None:
    ranking = rank(matcher, text)
    assert ranking.top is None
    assert ranking.reason in {"empty", "below_threshold", "ambiguous"}


def test_empty_text_says_so(matcher: Matcher) -> None:
    ranking = rank(matcher, "？？？")
    assert (ranking.top, ranking.reason, ranking.candidates) == (None, "empty", ())


def test_candidates_are_best_first_one_per_intent(matcher: Matcher) -> None:
    ranking = matcher.rank(normalize("包邮吗，什么时候发货"), limit=5)
    intents = [c.intent for c in ranking.candidates]
    scores = [c.score for c in ranking.candidates]
    assert len(intents) == len(set(intents)) <= 5
    assert scores == sorted(scores, reverse=True)
    assert {"shipping_fee", "ship_time"} <= set(intents[:2])


def test_candidate_names_the_library_trigger(matcher: Matcher) -> None:
    top = rank(matcher, "包郵嗎").top
    assert top is not None and top.trigger == "包邮吗" and top.score == 100


def _intent(
    intent_id: str, triggers: tuple[str, ...], negatives: tuple[str, ...] = (), mode: str = "suggest"
) -> Intent:
    return Intent(
        id=intent_id,
        label=intent_id,
        triggers=triggers,
        negatives=negatives,
        replies=(f"{intent_id}_1",),
        mode="auto" if mode == "auto" else "suggest",
        threshold=None,
        auto_threshold=None,
        escalate=False,
        source="test",
    )


def _small(*intents: Intent, margin: float = 3.0) -> Matcher:
    library = Library(
        "zh-CN", {i.id: i for i in intents}, default_threshold=70, default_auto_threshold=95, margin=margin
    )
    return Matcher(LibrarySet({"zh-CN": library}))


def test_two_intents_equally_close_abstain_as_ambiguous() -> None:
    matcher = _small(_intent("a", ("退货",)), _intent("b", ("换货",)))
    ranking = matcher.rank(normalize("退货换货"))
    assert ranking.top is None and ranking.reason == "ambiguous"
    assert {c.intent for c in ranking.candidates} == {"a", "b"}


def test_margin_zero_lets_the_tie_through() -> None:
    matcher = _small(_intent("a", ("退货",)), _intent("b", ("换货吗",)), margin=0)
    ranking = matcher.rank(normalize("退货还是换货吗"))
    assert ranking.top is not None and ranking.reason == "confident"


@pytest.mark.parametrize(
    ("text", "first"),
    [("退货吗，换货吗", "a"), ("换货吗？退货吗", "b"), ("在吗 换货吗 退货吗", "b")],  # a pleasantry asks nothing
)
def test_a_tie_between_two_questions_goes_to_the_first_asked(text: str, first: str) -> None:
    matcher = _small(_intent("a", ("退货吗",)), _intent("b", ("换货吗",)), _intent("greeting", ("在吗",)))
    assert matcher._libraries.library("zh-CN").margin > 0  # noqa: SLF001 - the tie is within the margin
    ranking = matcher.rank(normalize(text))
    assert ranking.top is not None and ranking.top.intent == first, ranking
    assert ranking.reason == "first_question"
    assert {c.intent for c in ranking.candidates[:2]} == {"a", "b"}  # the other question stays offered


def test_a_tie_inside_one_question_stays_ambiguous() -> None:
    """Only parts that each confidently ask one of the tied intents settle a tie; one question holding both
    ("退货换货", beside a pleasantry that asks nothing) is still for an agent."""
    matcher = _small(_intent("a", ("退货",)), _intent("b", ("换货",)), _intent("greeting", ("在吗",)))
    for text in ("退货换货", "退货换货 在吗"):
        ranking = matcher.rank(normalize(text))
        assert ranking.top is None and ranking.reason == "ambiguous", ranking
        assert {c.intent for c in ranking.candidates[:2]} == {"a", "b"}


def test_negative_example_pushes_its_intent_down() -> None:
    without = _small(_intent("refund", ("退款",)), _intent("exchange", ("换码",)))
    with_negative = _small(_intent("refund", ("退款",), negatives=("退款就不用了",)), _intent("exchange", ("换码",)))
    text = normalize("退款就不用了，换码")
    top = without.rank(text).top
    assert top is not None and top.intent == "refund"
    ranking = with_negative.rank(text)
    assert ranking.top is not None and ranking.top.intent == "exchange"


def test_below_threshold_keeps_candidates_for_the_agent() -> None:
    matcher = _small(_intent("a", ("什么时候发货",)))
    ranking = matcher.rank(normalize("什么"))
    assert ranking.top is None and ranking.reason == "below_threshold"
    assert [c.intent for c in ranking.candidates] == ["a"]


def test_auto_send_needs_auto_mode_and_the_auto_threshold() -> None:
    matcher = _small(_intent("hello", ("在吗",), mode="auto"), _intent("price", ("便宜点",)))
    assert matcher.would_auto_send(matcher.rank(normalize("在吗")))
    assert not matcher.would_auto_send(matcher.rank(normalize("便宜点")))  # suggest mode
    close = matcher.rank(normalize("请问在吗今天"))  # contained, confident, but under 95
    assert close.top is not None and not matcher.would_auto_send(close)


def test_english_settings_come_from_the_english_library() -> None:
    zh = Library("zh-CN", {"hi": _intent("hi", ("你好",), mode="auto")}, 70, 95, 3)
    en = Library("en", {"hi": _intent("hi", ("hello",))}, 70, 95, 3)  # suggest only in English
    matcher = Matcher(LibrarySet({"zh-CN": zh, "en": en}))
    assert matcher.would_auto_send(matcher.rank(normalize("你好")))
    assert not matcher.would_auto_send(matcher.rank(normalize("hello")))


def test_trigger_count_counts_every_locale(matcher: Matcher) -> None:
    libraries = load_libraries(LIBRARY_DIR)
    expected = sum(len(i.triggers) for lib in libraries.libraries.values() for i in lib.intents.values())
    assert matcher.trigger_count == expected


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("包邮吗 什么时候发货", ["包邮吗", "什么时候发货"]),
        ("包邮吗？什么时候发货", ["包邮吗", "什么时候发货"]),
        ("有货吗走什么快递", ["有货吗", "走什么快递"]),  # 吗 ends a question inside one run
        ("是3.5kg的吗", ["是3.5kg的吗"]),  # a decimal point is not a clause break
        ("when will it ship? is shipping free", ["when will it ship", "is shipping free"]),
        ("什么时候发货", ["什么时候发货"]),
    ],
)
def test_split_questions(text: str, parts: list[str]) -> None:
    assert split_questions(text) == parts


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        ("包邮吗 什么时候发货", ["shipping_fee", "ship_time"]),
        ("有货吗走什么快递", ["stock", "shipping_fee"]),
        ("is shipping free? when will it ship", ["shipping_fee", "ship_time"]),
        ("能开发票吗？能开发票吗", ["invoice"]),  # one ranking per intent
    ],
)
def test_rank_parts_gives_one_confident_ranking_per_question(matcher: Matcher, text: str, intents: list[str]) -> None:
    rankings = matcher.rank_parts(normalize(text))
    assert sorted(r.top.intent for r in rankings if r.top) == sorted(intents)
    scores = [r.top.score for r in rankings if r.top]
    assert scores == sorted(scores, reverse=True)  # best first


def test_rank_parts_of_one_question_is_rank(matcher: Matcher) -> None:
    text = normalize("这款还有货吗")
    assert matcher.rank_parts(text) == [matcher.rank(text)]


def test_rank_parts_falls_back_to_the_whole_message_when_no_part_is_confident(matcher: Matcher) -> None:
    text = normalize("嗯嗯，好")
    assert matcher.rank_parts(text) == [matcher.rank(text)]
    assert matcher.rank_parts(text)[0].top is None


def test_scores_do_not_depend_on_the_trigger_order_or_the_process() -> None:
    """The shortlist is deterministic: the same library in another order ranks the same."""
    forward = _small(_intent("a", ("退货", "退货吗", "我要退货")), _intent("b", ("换货", "换货吗")))
    backward = _small(_intent("b", ("换货吗", "换货")), _intent("a", ("我要退货", "退货吗", "退货")))
    for text in ("退货吗", "我要换货", "退货还是换货"):
        a, b = forward.rank(normalize(text), limit=5), backward.rank(normalize(text), limit=5)
        assert [(c.intent, c.score) for c in a.candidates] == [(c.intent, c.score) for c in b.candidates]


@pytest.mark.parametrize(
    "text",
    ["包邮吗", "这个什么时候能发货呀", "bao you ma", "退款就不用了，给我换个L码吧", "where is my parcel", "在吗在吗",
     "优惠券领了怎么用不了", "300卖不卖", "收到的杯子碎了，要退款", "can i get an invoice for this order"],
)
def test_score_bounds_never_undercut_a_score(matcher: Matcher, text: str) -> None:
    """Skipping a trigger by its bound is exact only if the bound is never below the real score."""
    message = matcher._encode(normalize(text), learn=False)
    shortlist = [matcher._entries[i] for i in matcher._shortlist(message)]
    contain_min = SOUND_CONTAIN_MIN if message.has_cjk else 0
    text_bounds, sound_bounds = _entry_bounds(message, shortlist)
    for entry, text_bound, sound_bound in zip(shortlist, text_bounds, sound_bounds, strict=True):
        # Not suppressed: containment allowed, the highest the score can be.
        assert text_bound >= _similarity(message.text, message.text_set, entry.text, False), entry.trigger
        if not message.english:  # an English message is never compared by sound
            blocked = entry.sound.length < contain_min
            assert sound_bound >= _similarity(message.sound, message.sound_set, entry.sound, blocked), entry.trigger


#: Long messages with several topics and many near-ties: where the pruning has the most to skip.
BUSY_MESSAGES = [
    "东西寄回去三天了钱什么时候退",
    "想换货要怎么操作呢",
    "付款两天了还没发货到底什么时候发",
    "鞋码偏小能换大一码吗 顺便问下什么时候发货",
    "运费险怎么用，退货运费谁出",
    "优惠券领了怎么用不了 提示不满足条件",
    "退款就不用了，给我换个L码吧",
    "where is my parcel it has not moved for 3 days",
    "bao you ma shenme shihou fahuo",
    "好的谢谢",
    "质量太差了我要投诉 还要退款",
]


def _exact(entry: _Entry, message: object, suppressed: set[tuple[str, str]]) -> float:
    return _score(entry, message, suppressed, NO_FLOOR, math.inf, math.inf)  # type: ignore[arg-type]


def _score_everything(matcher: Matcher, text: str, limit: int) -> list[Candidate]:
    """The reference the pruned matcher must equal: every shortlisted trigger scored in full, in shortlist
    order (the first of equal scores stays), every negative example applied."""
    message = matcher._encode(normalize(text), learn=False)
    shortlist = [matcher._entries[i] for i in matcher._shortlist(message)]
    suppressed = _suppressed(shortlist, message)
    best: dict[str, tuple[float, _Entry]] = {}
    for entry in shortlist:
        held = best.get(entry.intent)
        if not entry.negative and (held is None or _exact(entry, message, suppressed) > held[0]):
            best[entry.intent] = (_exact(entry, message, suppressed), entry)
    positive = {intent: Candidate(intent, round(score, 1), e.trigger) for intent, (score, e) in best.items()}
    for intent, candidate in list(positive.items()):
        negatives = [_exact(e, message, suppressed) for e in shortlist if e.negative and e.intent == intent]
        if max(negatives, default=0.0) >= candidate.score - NEGATIVE_SLACK:
            positive[intent] = Candidate(intent, max(0.0, candidate.score - NEGATIVE_PENALTY), candidate.trigger)
    return sorted(positive.values(), key=lambda c: (-c.score, c.intent))[:limit]


@pytest.mark.parametrize("text", BUSY_MESSAGES)
@pytest.mark.parametrize("limit", [1, 3, 5])
def test_pruned_ranking_equals_scoring_every_shortlisted_trigger(matcher: Matcher, text: str, limit: int) -> None:
    """Bounds, gate, floors and the early stop skip work, never a result: same intents, scores, triggers.
    (`_rank`: the scoring itself, before the rules that may put another candidate on top.)"""
    assert list(matcher._rank(normalize(text), limit).candidates) == _score_everything(matcher, text, limit)


def test_pruning_is_exact_in_a_library_of_near_duplicates() -> None:
    """Many triggers of several intents that differ in one unit: ties everywhere, the gate busy."""
    stems = {"ship": "什么时候发", "refund": "什么时候退", "stock": "什么时候到", "pay": "怎么付"}
    intents = [
        _intent(name, tuple(f"{stem}{c}" for c in "货款钱了吗呢啊单件"), negatives=(f"不问{stem}",))
        for name, stem in stems.items()
    ]
    matcher = _small(*intents)
    for text in ["什么时候发货呀", "钱什么时候退回来", "怎么付款 什么时候到货", "不问什么时候发", "什么时候"]:
        assert list(matcher._rank(normalize(text), 3).candidates) == _score_everything(matcher, text, 3)


@pytest.mark.parametrize("text", BUSY_MESSAGES)
def test_a_score_under_its_floor_is_never_above_it(matcher: Matcher, text: str) -> None:
    """_score may cut short a score that cannot beat its floor, but never returns one above it."""
    message = matcher._encode(normalize(text), learn=False)
    shortlist = [matcher._entries[i] for i in matcher._shortlist(message)]
    suppressed = _suppressed(shortlist, message)
    text_bounds, sound_bounds = _entry_bounds(message, shortlist)
    for entry, text_bound, sound_bound in zip(shortlist, text_bounds, sound_bounds, strict=True):
        exact = _exact(entry, message, suppressed)
        for floor in (exact - 10, exact - 0.1, exact, exact + 0.1, exact + 10):
            cut = _score(entry, message, suppressed, floor, text_bound, sound_bound)
            assert cut == exact if exact > floor else cut <= floor, (entry.trigger, floor)


def test_message_units_are_two_byte_strings(matcher: Matcher) -> None:
    """Syllable and word codes come from the BMP's private-use area, so encoded strings stay UCS-2 (faster
    in RapidFuzz); only a word the index has never seen gets a code outside it."""
    for text in ("包邮吗", "bao you ma", "where is my parcel"):
        message = matcher._encode(normalize(text), learn=False)
        assert max(map(ord, message.text + message.sound)) <= 0xFFFF, text
    unknown = matcher._encode(normalize("zzzqx"), learn=False)
    assert max(map(ord, unknown.text)) >= 0x100000


def test_shortlist_holds_at_most_the_cap_of_one_intent_but_every_negative() -> None:
    """A big library's shortlist fills with variants of one intent: they are capped, negatives are not."""
    variants = tuple(f"退货{c}" for c in "一二三四五六七八九十百千万亿甲乙丙丁")
    negatives = tuple(f"退货{c}吗" for c in "东南西北")
    matcher = _small(_intent("a", variants, negatives=negatives), _intent("b", ("退货费用",)))
    message = matcher._encode(normalize("退货一二三"), learn=False)
    shortlist = [matcher._entries[i] for i in matcher._shortlist(message)]
    held = Counter(e.intent for e in shortlist if not e.negative)
    assert len(variants) > SHORTLIST_PER_INTENT and held["a"] == SHORTLIST_PER_INTENT
    assert held["b"] == 1
    assert sum(e.negative for e in shortlist) == len(negatives)
    assert matcher.rank(normalize("退货一二三")).candidates[0].trigger == "退货一"  # the best share was kept


def _english(*intents: Intent) -> Matcher:
    zh = Library("zh-CN", {}, 70, 95, 3)
    return Matcher(LibrarySet({"zh-CN": zh, "en": Library("en", {i.id: i for i in intents}, 70, 95, 3)}))


def test_english_typo_of_a_known_word_matches_it() -> None:
    """An English word the index has never seen stands for the one known word a letter or a swap away."""
    matcher = _english(
        _intent("logistics", ("where is my package",)),
        _intent("stock", ("is it available",)),
        _intent("return_refund", ("when will i receive my refund",)),
    )
    for text, intent in [
        ("where is my pakage", "logistics"),  # a letter missing
        ("is it availble", "stock"),
        ("where is my packagge", "logistics"),  # a letter extra
        ("when will i recieve my refund", "return_refund"),  # two letters swapped
    ]:
        top = matcher.rank(normalize(text)).top
        assert top is not None and top.intent == intent, text


@pytest.mark.parametrize(
    ("known", "message"),
    [
        ("thank you", "think you"),  # a replaced letter: another real word, not a typo
        ("real leather", "real weather"),  # another first letter
        ("delivery charge", "delivery charger"),  # another form of the known word
        ("last price", "least price"),  # words under TYPO_MIN_LENGTH letters are left alone
    ],
)
def test_english_typo_tolerance_leaves_other_words_alone(known: str, message: str) -> None:
    matcher = _english(_intent("a", (known,)), _intent("b", ("something else entirely",)))
    unknown = next(w for w in message.split() if w not in known.split())
    assert matcher._typo_fix(_stem(unknown)) is None
    assert max(map(ord, matcher._encode(normalize(message), learn=False).text)) >= 0x100000  # stays unknown


def test_typo_tolerance_is_english_only() -> None:
    """A Chinese message's Latin words are product codes and pinyin, never corrected."""
    matcher = _english(_intent("logistics", ("where is my package",)))
    message = matcher._encode(normalize("pakage到哪了"), learn=False)
    assert max(map(ord, message.text)) >= 0x100000  # still an unknown word


# -- a greeting in front of a request -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hi, can u do a discount?", "bargain"),  # the greeting outscored the request on the whole message
        ("你好 我想问下这个耳机防水吗", "product_info"),  # a tie with the greeting, settled by what follows it
        ("你好呀 小二", "greeting"),  # too short to ask anything else
        ("你好，可以咨询一下吗", "greeting"),  # what follows opens a chat too
        ("hi bro", "greeting"),
        ("你好 在吗 亲", "greeting"),  # pleasantries only, taken away one after the other
    ],
)
def test_what_follows_a_greeting_decides(matcher: Matcher, text: str, intent: str) -> None:
    ranking = rank(matcher, text)
    assert ranking.top is not None and ranking.top.intent == intent, ranking


@pytest.mark.parametrize("opening", ["您好 ", "你好 在吗 ", "亲 你好，在吗？"])
def test_a_greeting_before_a_request_nobody_understands_is_no_answer(matcher: Matcher, opening: str) -> None:
    text = opening + "请问这个台灯的灯罩能单独拆下来清洗吗"  # a product question no trigger is close to
    whole = rank(matcher, text)
    assert whole.top is None and whole.reason == "opener", whole
    assert whole.candidates[0].intent == "greeting"  # still offered to the agent, just not as the answer
    behind = rank(matcher, text[len(opening):])
    assert behind.top is None and behind.reason == "below_threshold"  # the request alone is not understood


def test_a_greeting_further_in_is_no_opener(matcher: Matcher) -> None:
    opened = matcher.rank(normalize("你好 亲"))
    assert opened.top is not None and opened.top.intent == "greeting"
    text = "我想问问清楚再买 你好"  # the greeting closes the message; nothing in front to take away
    ranking = rank(matcher, text)
    assert ranking.reason != "opener"


def test_pinyin_typed_among_characters_meets_the_characters_by_sound() -> None:
    matcher = _small(_intent("fee", ("运费多少",)), _intent("free", ("包邮吗",)))
    for text, intent in [("yunfei多少", "fee"), ("请问一下yunfei多少", "fee"), ("Baoyou吗", "free")]:
        ranking = matcher.rank(normalize(text))
        assert ranking.top is not None and ranking.top.intent == intent, (text, ranking)


@pytest.mark.parametrize("extra", ["[邮箱x] ", "abc@example.com ", "订单4123456789012 ", "https://shop.example.com/a "])
def test_a_message_carrying_data_is_never_sent_automatically(extra: str) -> None:
    matcher = _small(_intent("thanks", ("辛苦你们了",), mode="auto"))
    words_only = matcher.rank(normalize("辛苦你们了"))
    assert words_only.top is not None and matcher.would_auto_send(words_only)
    with_data = matcher.rank(normalize(extra + "辛苦你们了"))
    assert with_data.top is not None and with_data.top.intent == "thanks"  # still the answer an agent is shown
    assert not matcher.would_auto_send(with_data)

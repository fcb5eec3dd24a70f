"""Normalise stage: real buyer spellings -> the text, pinyin key and language the matcher compares."""

import pytest
from pypinyin import lazy_pinyin

from csbot.normalize import normalize, split_pinyin


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("包郵嗎？", "包邮吗"),  # traditional -> simplified, punctuation dropped
        ("幾時發貨", "什么时候发货"),  # traditional + colloquial 几时
        ("Ｈｅｌｌｏ", "hello"),  # full-width letters, lowercased
        ("３００卖吗", "300卖吗"),  # full-width digits
        ("３００卖不卖", "300卖吗"),  # A不A question -> A吗
        ("会不会掉色", "会掉色吗"),
        ("有没有货", "有货吗"),
        ("包油吗", "包邮吗"),  # homophone typo
        ("运废多少钱", "运费多少钱"),
        ("我要投述", "我要投诉"),
        ("啥时候发或", "什么时候发货"),
        ("能换或吗", "能换货吗"),
        ("有活吗亲", "有货吗"),  # 活 -> 货 …
        ("有什么活动吗", "有什么活动吗"),  # … but not in 活动
        ("今天能发嘛亲亲", "今天能发"),  # trailing fillers
        ("亲在吗🙋", "在吗"),  # leading filler and emoji
        ("在吗吗吗", "在吗"),  # repeated characters
        ("emmm", "em"),
        ("是正品麽", "是正品吗"),  # question tail 么 -> 吗
        ("亲 在线不～", "在线吗"),  # question tail 不 -> 吗
        ("算了不换了，还是退吧", "算了不换了 还是退"),  # clauses kept apart by one space
        ("订单号：4123456789012", "订单号"),  # order numbers are not words
        ("查一下这个单号 YT1234567890123", "查一下这个单号"),
    ],
)
def test_text(raw: str, text: str) -> None:
    assert normalize(raw).text == text


@pytest.mark.parametrize(
    ("cantonese", "mandarin"),
    [
        ("唔好意思，我揀錯咗款，未發貨可唔可以改", "不好意思，我选错了款，未发货可不可以改"),
        ("能唔能平啲啊老板", "能不能便宜点啊老板"),
        ("可唔可以平D", "可不可以便宜点"),  # 啲 typed as a capital D
        ("退貨嘅運費係邊個出？", "退货的运费是谁出？"),
        ("有冇貨呀", "有没有货呀"),
        ("呢個幾多錢", "这个多少钱"),
        ("係咪正品㗎", "是不是正品"),
        ("有大碼咩", "有大码吗"),
        ("咩顏色好睇", "什么颜色好看"),
        ("幾耐到", "多久到"),
        ("我而家落單聽日寄唔寄得出", "我现在下单明天寄不寄得出"),
        ("點解仲未發貨", "为什么还未发货"),
        ("唔該晒", "谢谢晒"),
    ],
)
def test_cantonese_reads_as_mandarin(cantonese: str, mandarin: str) -> None:
    assert normalize(cantonese).text == normalize(mandarin).text


@pytest.mark.parametrize(
    ("mandarin", "text"),
    [
        ("好嘞 已拍", "好嘞 已拍"),  # 嘞 is Mandarin too
        ("联系谁", "联系谁"),  # 系 of 联系 stays
        ("申请仲裁", "申请仲裁"),
        ("喇叭有货吗", "喇叭有货吗"),
        ("旁边那个", "旁边那个"),
        ("好的呢", "好的"),  # 呢 as a filler, not Cantonese 呢 (this)
    ],
)
def test_mandarin_with_the_same_characters_is_left_alone(mandarin: str, text: str) -> None:
    assert normalize(mandarin).text == text


@pytest.mark.parametrize("noise", ["嗯嗯", "哦哦", "？？？？？", "😅", "[表情]", "www.taobao.com", "。", ""])
def test_pure_noise_is_empty(noise: str) -> None:
    assert normalize(noise).text == ""


@pytest.mark.parametrize(
    ("raw", "pinyin", "lang"),
    [
        ("包郵嗎", "bao you ma", "zh-CN"),
        ("包油", "bao you", "zh-CN"),
        ("bao you", "bao you", "zh-CN"),
        ("zaibuzai", "zai ma", "zh-CN"),  # like 在不在 -> 在吗
        ("zhenren kefu", "zhen ren ke fu", "zh-CN"),
        ("xiexie", "xie", "zh-CN"),  # like 谢谢, which collapses to 谢
        ("白色M还有吗", "bai se m hai you ma", "zh-CN"),
        ("OK 拍好了", "ok pai hao le", "zh-CN"),
        ("yunfei为啥要12块", "yun fei wei shen me yao 12 kuai", "zh-CN"),  # pinyin typed among characters
        ("iphone能用吗", "iphone neng yong ma", "zh-CN"),  # an English word among them stays as typed
        ("L ma hai you mei you", "l ma hai you ma", "zh-CN"),  # a size among pinyin words is no English
        ("XL please", "xl please", "en"),
        ("human please", "human please", "en"),
        ("hi there", "hi there", "en"),
        ("can i pay by credit card", "can i pay by credit card", "en"),
        ("he", "he", "en"),  # an English word that only looks like pinyin
    ],
)
def test_pinyin_and_language(raw: str, pinyin: str, lang: str) -> None:
    normalized = normalize(raw)
    assert (normalized.pinyin, normalized.lang) == (pinyin, lang)


def test_original_is_kept() -> None:
    assert normalize("包郵嗎？").original == "包郵嗎？"


@pytest.mark.parametrize(
    ("word", "syllables"),
    [("fahuo", ["fa", "huo"]), ("quxiao", ["qu", "xiao"]), ("dingdan", ["ding", "dan"]), ("please", None)],
)
def test_split_pinyin(word: str, syllables: list[str] | None) -> None:
    assert split_pinyin(word) == syllables


@pytest.mark.parametrize(
    "run",
    ["银行卡能用吗", "重庆发货吗", "重新发一个", "长大了穿不了", "银行行长", "还款日", "了解一下", "要多长时间",
     "调货要几天", "朝阳区能送吗", "什么时候发货", "包邮吗"],
)
def test_pinyin_by_word_reads_like_pypinyin(run: str) -> None:
    """Pinyin is memoised per word, never per character: a phrase fixes its heteronyms (银行 yin hang, not
    xing; 重庆 chong qing), and the memoised reading must equal pypinyin's reading of the whole run."""
    text = normalize(run).text
    expected = " ".join(lazy_pinyin(text))
    assert normalize(run).pinyin == expected
    assert normalize(run).pinyin == expected  # the second time from the memo


def test_split_pinyin_hands_out_a_fresh_list() -> None:
    """The split is memoised; a caller changing the list it got must not change what the next one gets."""
    first = split_pinyin("baoyou")
    assert first == ["bao", "you"]
    first.append("ma")
    assert split_pinyin("baoyou") == ["bao", "you"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("r u there", "are you there"), ("when can u ship it, pls", "when can you ship it please"),
     ("hw much is ur shipping", "how much is your shipping"), ("thx", "thanks"),
     ("can i get it tmr", "can i get it tomorrow")],
)
def test_english_text_speak_is_written_out(text: str, expected: str) -> None:
    normalized = normalize(text)
    assert (normalized.lang, normalized.text, normalized.pinyin) == ("en", expected, expected)


@pytest.mark.parametrize("text", ["u", "ur", "r"])
def test_text_speak_stays_inside_words_and_out_of_chinese(text: str) -> None:
    """Only whole English words change: "guru", "run" keep their letters, and a Chinese message keeps its Latin."""
    assert normalize(f"guru run {text}x").text == f"guru run {text}x"
    assert normalize(f"包邮吗 {text}").text == f"包邮吗 {text}"


@pytest.mark.parametrize("text", ["human", "sale?", "courier", "size guide", "rude!!"])
def test_english_shop_words_that_split_into_pinyin_are_english(text: str) -> None:
    assert normalize(text).lang == "en"


@pytest.mark.parametrize("text", ["zai ma", "baoyou ma", "xiexie"])
def test_pinyin_messages_stay_chinese(text: str) -> None:
    assert normalize(text).lang == "zh-CN"


@pytest.mark.parametrize(
    ("raw", "data"),
    [
        ("[邮箱x] 辛苦亲了", True),  # a research corpus's mask for an email address
        ("开票税号:[数字x]AB", True),
        ("abc@qq.com 发票发这个邮箱", True),
        ("https://item.taobao.com/item.htm?id=1 有货吗", True),
        ("订单号：4123456789012", True),
        ("[微笑]在吗", False),  # a sticker is no data
        ("#E-s[数字x] 有货吗", False),  # nor is an emoji code
        ("9折吗 M码", False),
        ("thanks!", False),
    ],
)
def test_data_the_buyer_sent_is_noted(raw: str, data: bool) -> None:
    normalized = normalize(raw)
    assert normalized.data is data, normalized
    assert "@" not in normalized.text and "qq" not in normalized.text  # an email address is taken out whole

"""Normalise stage: raw buyer text -> Normalized (simplified, cleaned, pinyin key, language). Pure: no I/O.

Buyers type traditional or simplified characters, Cantonese words, full-width letters, emoji, filler particles
(亲/呢/啊…), stretched words (在吗吗吗), homophone typos from pinyin input methods (包油, 运废) and
sometimes plain pinyin ("bao you") or English. Everything the matcher compares is first put through
:func:`normalize`, triggers from the script library included, so both sides are cleaned the same way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

from opencc import OpenCC
from pypinyin.core import Pinyin


@dataclass(frozen=True)
class Normalized:
    original: str
    text: str  # simplified, half-width, lowercase, no emoji/punctuation/fillers; clauses separated by one space
    pinyin: str  # toneless pinyin of ``text``, syllables space-separated; Latin words and numbers kept as typed
    lang: str  # "zh-CN" or "en"
    # The buyer sent data as well as words: a link, an email address, an order, tracking or phone number, or a
    # platform's mask for such data. It is taken out of ``text``; what the words ask is about that data.
    data: bool = False


# Every toneless syllable of Mandarin as pypinyin spells it, minus interjections (m, n, ng, hm, hng) and
# rare readings (lo, yo, den, nun …) that would make English words look like pinyin.
PINYIN_SYLLABLES = frozenset(
    """a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can cang cao
    ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan chuang chui chun
    chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei deng di dia dian diao die ding diu dong
    dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng fo fou fu ga gai gan gang gao ge gei gen
    geng gong gou gu gua guai guan guang gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua huai
    huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao
    ke ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei leng li lia lian liang
    liao lie lin ling liu long lou lu luan lun luo lv lve ma mai man mang mao me mei men meng mi mian miao mie
    min ming miu mo mou mu na nai nan nang nao ne nei nen neng ni nian niang niao nie nin ning niu nong nou nu
    nuan nuo nv nve o ou pa pai pan pang pao pei pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang
    qiao qie qin qing qiong qiu qu quan que qun ran rang rao re ren reng ri rong rou ru rua ruan rui run ruo
    sa sai san sang sao se sen seng sha shai shan shang shao she shei shen sheng shi shou shu shua shuai shuan
    shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao te teng ti tian tiao tie ting
    tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia xian xiang xiao xie xin xing xiong
    xiu xu xuan xue xun ya yan yang yao ye yi yin ying yong you yu yuan yue yun za zai zan zang zao ze zei zen
    zeng zha zhai zhan zhang zhao zhe zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi
    zong zou zu zuan zui zun zuo""".split()
)

# Clothing sizes as buyers type them; they are neither pinyin nor English words (the matcher gives them one unit;
# "s" only ever stands alone in Chinese).
SIZE_LETTERS = frozenset({"xs", "s", "m", "l", "xl", "xxl", "xxxl"})
# English words that happen to spell valid pinyin; a message made only of these is English ("he", "you").
ENGLISH_LOOKALIKES = frozenset(
    "a an he she me men you long hang change china pie tie die ban fan pin pen ping bang hen gun gang man ran "
    "sun run den tan ten bin dig bo bus "
    # shop words that split into syllables too (hu-man, cou-ri-er, si-ze): alone, "human?" is English
    "human courier rude sale see size guide fake made make take like here one more same name nice sure "
    # and short words a buyer may send alone ("eta?", "sue"): not pinyin either
    "eta age tea area sue emi "
    # and everyday words a short English message may be made of with the ones above ("you are cheating me",
    # "are you chinese", "can you"): every word splits into syllables, none is pinyin here
    "are can came time open chance running waiting sending pending awaiting cheating chinese machine date case "
    "reduce warehouse taken chase beige remote site side buying care piece page woman male seen late ending "
    "haha hehe".split()
)

# How English buyers shorten words in chat, written out before matching, so "can u ship tmr" meets the
# trigger "can you ship tomorrow". Whole words only, and only in text already detected as English.
TEXT_SPEAK = {
    "u": "you", "ur": "your", "r": "are", "pls": "please", "plz": "please", "thx": "thanks", "tks": "thanks",
    "ty": "thank you", "hw": "how", "wat": "what", "wht": "what", "im": "i am", "tmr": "tomorrow",
    "tmrw": "tomorrow", "msg": "message", "pic": "picture", "pics": "pictures", "coz": "because",
    "cuz": "because", "wanna": "want to", "gonna": "going to",
    "thnx": "thanks", "thanx": "thanks", "thnks": "thanks", "tnx": "thanks", "thks": "thanks", "tq": "thank you",
    "avail": "available", "pkg": "package", "pkge": "package", "addr": "address", "qty": "quantity",
    "pcs": "pieces", "amt": "amount", "rcvd": "received", "ppl": "people", "hv": "have", "wen": "when",
    "abt": "about", "cud": "could", "wud": "would", "shud": "should", "gimme": "give me", "lemme": "let me",
    "bcoz": "because", "bcz": "because", "sry": "sorry", "wats": "whats", "thru": "through",
    "rn": "right now", "ive": "i have", "nvm": "never mind", "smth": "something", "sth": "something",
    "bday": "birthday", "abit": "a bit", "gotta": "got to", "b4": "before", "2day": "today", "tdy": "today",
    "2moro": "tomorrow", "idk": "i dont know", "dunno": "dont know", "recd": "received", "plss": "please",
}
TEXT_SPEAK_WORD = re.compile(r"\b(?:" + "|".join(sorted(TEXT_SPEAK, key=len, reverse=True)) + r")\b")

# Homophone and typo fixes from pinyin input methods, applied to simplified lowercase text. Whole words only
# where a single character would be ambiguous (活 in 有活吗 = 货, but 活动 stays).
TYPO_FIXES: tuple[tuple[str, str], ...] = (
    (r"包油|包有(?=吗|不|么|没)", "包邮"),
    (r"运废|运飞|运肥", "运费"),
    (r"邮废", "邮费"),
    (r"投述|投素|投宿(?!舍)", "投诉"),
    (r"发或|发获", "发货"),
    (r"换或|换获", "换货"),
    (r"退或|退获", "退货"),
    (r"到或", "到货"),
    (r"收或", "收货"),
    (r"有活(?!动)", "有货"),
    (r"没活(?!动)", "没货"),
    (r"优惠卷|优惠劵|优惠圈", "优惠券"),
    (r"(?<=[领用有张个])卷", "券"),
    (r"退宽|推款", "退款"),
    (r"快第|快低", "快递"),
    (r"物留|无流", "物流"),
    (r"发漂|发飘", "发票"),
    (r"质两", "质量"),
    (r"啥子|啥|神马|什莫", "什么"),
    (r"肿么|咋", "怎么"),
    (r"木有|米有|么有|冇", "没有"),
    (r"几时|多会儿|多早晚", "什么时候"),
    (r"哪儿", "哪"),
    (r"哈[啰喽罗咯]|嗨喽", "哈喽"),
)

# Cantonese as Hong Kong and Guangdong buyers type it, read as the Mandarin the library is written in (after
# OpenCC's t2s, so 係 is already 系 and 邊 边). No maintained library maps Cantonese words to Mandarin ones
# (OpenCC converts characters, not vocabulary); these are the function words and shop words of a chat. Words
# first, then single characters; each single character here is not written in Mandarin (好嘞 keeps its 嘞).
CANTONESE: tuple[tuple[str, str], ...] = (
    (r"唔该", "谢谢"), (r"唔好意思", "不好意思"), (r"系唔系|系咪", "是不是"), (r"唔系", "不是"),
    (r"边个", "谁"), (r"边度|边处", "哪里"), (r"边(?=[个间家只件款种样])", "哪"),
    (r"乜嘢|乜野|咩嘢|咩野", "什么"), (r"点解|做咩|为咩", "为什么"), (r"点样", "怎么"),
    (r"几多钱|几钱", "多少钱"), (r"几多", "多少"), (r"几耐", "多久"),
    (r"呢啲", "这些"), (r"有啲", "有点"), (r"呢(?=[个件款只度次])", "这"), (r"[𠮶嗰](?=[个件款只度次])", "那"),
    (r"而家", "现在"), (r"听日|听朝", "明天"), (r"寻日|琴日", "昨天"),
    (r"平啲|平d(?![a-z])", "便宜点"), (r"落单", "下单"), (r"搞掂", "搞定"),
    (r"(?<![关联])系(?=谁|哪|什么|怎么)", "是"),
    (r"咩(?=[\s，,。？?！!~]|$)", "吗"), (r"咩", "什么"), (r"咁", "这么"), (r"嘢", "东西"),
    (r"唔", "不"), (r"咗", "了"), (r"嘅", "的"), (r"喺", "在"), (r"啲", "点"), (r"睇", "看"), (r"俾", "给"),
    (r"佢", "他"), (r"拣(?=错|了|个|款|边|哪|色|码)", "选"), (r"揾", "找"), (r"仲(?![裁夏秋春冬介])", "还"),
    (r"[㗎噃㖞]", ""),
)
CANTONESE_PATTERNS = tuple((re.compile(pattern), replacement) for pattern, replacement in CANTONESE)
ANY_CANTONESE = re.compile("|".join(f"(?:{pattern})" for pattern, _ in CANTONESE))

# Compiled once, applied in order (a later fix may depend on an earlier one's output). Most clauses hold no
# typo at all: one search for any of them lets those skip the whole sequence with the same result.
TYPO_PATTERNS = tuple((re.compile(pattern), replacement) for pattern, replacement in TYPO_FIXES)
ANY_TYPO = re.compile("|".join(f"(?:{pattern})" for pattern, _ in TYPO_FIXES))

# Particles that carry tone, not meaning, at the start or end of a clause.
LEADING_FILLERS = "亲嗯哦噢额呃诶哎"
TRAILING_FILLERS = "亲呢啊哈嘛哒呀哦噢啦吧嗯哟咯捏"
# Particles that are fillers wherever they appear.
ANYWHERE_FILLERS = re.compile(r"[啊呀]")

URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|cn|net|org|hk|tw)\b\S*", re.ASCII)
# Platform masks and sticker codes: [表情], [订单x], [数字x], #E-s[数字x], /:074.
MASK = re.compile(r"#e-s\[[^\[\]]{0,12}\]|\[[^\[\]]{1,12}\]|/:[0-9a-z^]{1,4}")
# Order, tracking and phone numbers: long digit runs, optionally behind a short courier prefix.
LONG_NUMBER = re.compile(r"[a-z]{0,4}\d{7,}")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII)
# Masks that stand for personal data ([订单x], [邮箱x], [数字x], [链接x] in the research corpora), not for a
# sticker ([微笑], #E-s[数字x], /:074).
DATA_MASK = re.compile(r"(?<!#e-s)\[[^\[\]]{1,11}x\]")
# where's -> wheres, don't -> dont: one English word, not two.
APOSTROPHE = re.compile(r"(?<=[a-z])['\u2019](?=[a-z])")
CJK = "\u3400-\u4dbf\u4e00-\u9fff"
NOT_KEPT = re.compile(rf"[^{CJK}a-z0-9]+")
TOKEN = re.compile(rf"[{CJK}]+|[a-z]+|[0-9]+")
CJK_REPEAT = re.compile(rf"([{CJK}])\1+")
LATIN_REPEAT = re.compile(r"([a-z])\1{2,}")
# A trailing 么/不/没 turns a statement into a question, like 吗: 是正品么, 包邮不, 有人没.
# Chinese numerals before a measure word are amounts: 便宜五十块 -> 便宜50块, 打八折 -> 打8折.
CHINESE_NUMBER = re.compile(r"[零一二两三四五六七八九十百千]+(?=[块元个件码号天折斤毛])")
DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
UNITS = {"十": 10, "百": 100, "千": 1000}
# "A不A" / "A没A" questions (在不在, 包不包邮, 会不会掉色, 有没有货) mean "A…吗".
A_NOT_A = re.compile(r"([\u4e00-\u9fff])[不没]\1")
QUESTION_TAIL = re.compile(
    r"(?<=[\u4e00-\u9fff]{2})(?<![什怎这那多要])么$|(?<=[\u4e00-\u9fff]{2})(?<![还都也并从我就])[不没]$"
)


@cache
def _converter() -> OpenCC:
    # Building the converter loads its dictionaries; do it once per process.
    return OpenCC("t2s")


def normalize(text: str) -> Normalized:
    """Clean one buyer message (or one library trigger) into the form the matcher compares."""
    simplified = APOSTROPHE.sub("", _mandarin(_converter().convert(unicodedata.normalize("NFKC", text)).lower()))
    without_email, emails = EMAIL.subn(" ", simplified)
    without_link, links = URL.subn(" ", without_email)
    stripped = LONG_NUMBER.sub(" ", MASK.sub(" ", without_link))
    # Data counted from the substitutions themselves; numbers and masks as the buyer typed them.
    data = bool(emails or links) or any(p.search(simplified) for p in (LONG_NUMBER, DATA_MASK))
    clauses = [_clean_clause(c) for c in NOT_KEPT.split(stripped)]
    cleaned = " ".join(c for c in clauses if c)
    lang, syllables = _language(cleaned)
    if lang == "en" and TEXT_SPEAK_WORD.search(cleaned):
        cleaned = TEXT_SPEAK_WORD.sub(lambda m: TEXT_SPEAK[m.group()], cleaned)
        syllables = TOKEN.findall(cleaned)
    return Normalized(original=text, text=cleaned, pinyin=" ".join(syllables), lang=lang, data=data)


def _mandarin(text: str) -> str:
    """Cantonese words read as Mandarin (see CANTONESE); most messages have none and cost one search."""
    if ANY_CANTONESE.search(text):
        for pattern, replacement in CANTONESE_PATTERNS:
            text = pattern.sub(replacement, text)
    return text


def _clean_clause(clause: str) -> str:
    if ANY_TYPO.search(clause):
        for pattern, replacement in TYPO_PATTERNS:
            clause = pattern.sub(replacement, clause)
    clause = CHINESE_NUMBER.sub(lambda m: str(chinese_number(m.group())), clause)
    clause = LATIN_REPEAT.sub(r"\1", CJK_REPEAT.sub(r"\1", clause))
    clause = ANYWHERE_FILLERS.sub("", clause)
    previous = None
    while previous != clause:
        previous = clause
        clause = clause.lstrip(LEADING_FILLERS).rstrip(TRAILING_FILLERS)
        # Collapsing again: removing a filler may bring two equal characters together.
        clause = CJK_REPEAT.sub(r"\1", clause)
    clause = QUESTION_TAIL.sub("吗", clause)
    if A_NOT_A.search(clause):
        clause = A_NOT_A.sub(r"\1", clause.replace("可不可以", "可以"), count=1)
        clause = clause if clause.endswith("吗") else clause + "吗"
    return clause


def chinese_number(numeral: str) -> int:
    """五十 -> 50, 三十五 -> 35, 一百五 -> 150 (spoken short form), 十 -> 10, 两 -> 2."""
    total, digit, last_unit = 0, 0, 1
    for char in numeral:
        if char == "零":  # 一百零五: the next digit is a unit digit
            last_unit, digit = 10, 0
        elif char in UNITS:
            last_unit = UNITS[char]
            total += (digit or 1) * last_unit
            digit = 0
        else:
            digit = DIGITS[char]
    # A trailing digit after a unit is one step down the scale: 一百五 is 150, 三十五 is 35.
    return total + (digit * last_unit // 10 if last_unit > 1 and total else digit)


def _language(text: str) -> tuple[str, list[str]]:
    """("zh-CN" | "en", pinyin syllables); pure-Latin text is pinyin when every word splits into syllables."""
    tokens = TOKEN.findall(text)
    words = [t for t in tokens if t.isascii() and t.isalpha()]
    if not words or any(not t.isascii() for t in tokens):
        return "zh-CN", _pinyin_of(tokens)
    # A size among pinyin words ("L ma hai you mei you") is no English word either.
    words = [w for w in words if w not in SIZE_LETTERS] or words
    # all() stops at the first word that is not pinyin: in English that is usually the first one.
    if all(_syllables(w) is not None for w in words) and not all(w in ENGLISH_LOOKALIKES for w in words):
        syllables: list[str] = []
        for token in tokens:
            for syllable in _syllables(token) or (token,):
                # "xiexie" must meet 谢谢, which collapsed to 谢 like every repeated character.
                if not syllables or syllables[-1] != syllable:
                    syllables.append(syllable)
        return "zh-CN", _pinyin_a_not_a(syllables)
    return "en", tokens


def _pinyin_a_not_a(syllables: list[str]) -> list[str]:
    """ "zai bu zai" -> "zai ma", as 在不在 -> 在吗 for characters."""
    for i in range(len(syllables) - 2):
        if syllables[i + 1] in ("bu", "mei") and syllables[i] == syllables[i + 2]:
            rest = [*syllables[: i + 1], *syllables[i + 3 :]]
            return rest if rest[-1] == "ma" else [*rest, "ma"]
    return syllables


def _pinyin_of(tokens: list[str]) -> list[str]:
    """The pinyin of a message with Chinese characters: theirs, and a Latin word's own syllables when it is
    pinyin typed among them ("yunfei为啥要12块" sounds like 运费为啥要12块); English words are kept as typed."""
    out: list[str] = []
    for token in tokens:
        if not token.isascii():
            out.extend(_run_pinyin(token))
        elif token.isalpha() and token not in ENGLISH_LOOKALIKES and (syllables := _syllables(token)) is not None:
            out.extend(syllables)
        else:
            out.append(token)
    return out


@cache
def _pinyin_tool() -> Pinyin:
    # pypinyin's converter, as its lazy_pinyin() uses it; built once per process.
    return Pinyin()


@lru_cache(maxsize=4096)
def _run_pinyin(run: str) -> tuple[str, ...]:
    """``lazy_pinyin(run)`` of a run of Chinese characters, memoised by word.

    pypinyin cuts a run into dictionary phrases and single characters and reads each word on its own (a
    phrase fixes its characters' readings: 银行 yin hang, not xing), so a word reads the same in every
    message and its reading can be kept; a new message is mostly words seen before. Pure: same run, same
    syllables as ``lazy_pinyin(run)``.
    """
    return tuple(syllable for word in _pinyin_tool().seg(run) for syllable in _word_pinyin(word))


@lru_cache(maxsize=16384)
def _word_pinyin(word: str) -> tuple[str, ...]:
    # A word that pypinyin cut out of a run cuts into itself again, so this reads it as it did in the run.
    return tuple(_pinyin_tool().lazy_pinyin(word))


def split_pinyin(word: str) -> list[str] | None:
    """Split run-together pinyin ("zaibuzai") into syllables, fewest syllables first; None if it is not pinyin."""
    syllables = _syllables(word)
    return None if syllables is None else list(syllables)


@lru_cache(maxsize=8192)
def _syllables(word: str) -> tuple[str, ...] | None:
    """:func:`split_pinyin`, memoised: every Latin word of every message goes through it, English ones too,
    and buyers reuse a small vocabulary. Pure."""
    if not word.isascii() or not word.isalpha():
        return None
    best: list[tuple[str, ...] | None] = [None] * (len(word) + 1)
    best[0] = ()
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            head = best[start]
            if head is not None and word[start:end] in PINYIN_SYLLABLES:
                candidate = (*head, word[start:end])
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[len(word)]

"""Who the demo customers are: Chinese names and companies, profile attributes, registrations.

Pure vocabulary and sampling helpers for :mod:`crm_es.demo.timeline`; every draw comes from the
``random.Random`` passed in, so a seed fixes the population.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final, TypeVar

from crm_es.domain.commands import RegisterCustomer
from crm_es.domain.values import Category, Channel, CustomerKind

T = TypeVar("T")

CST: Final = timezone(timedelta(hours=8))
"""China Standard Time: every demo business time carries +08:00."""

STAFF: Final = ("li", "zhang", "wang", "liu", "chen", "yang", "zhao", "huang")

REGIONS: Final = {
    "华东": (0.30, ("上海", "杭州", "南京", "苏州", "宁波")),
    "华南": (0.20, ("广州", "深圳", "厦门")),
    "华北": (0.17, ("北京", "天津", "石家庄")),
    "华中": (0.12, ("武汉", "长沙", "郑州")),
    "西南": (0.10, ("成都", "重庆", "昆明")),
    "西北": (0.05, ("西安", "兰州")),
    "东北": (0.06, ("沈阳", "哈尔滨", "大连")),
}
INDUSTRIES: Final = {
    "制造业": "制造有限公司", "零售": "商贸有限公司", "餐饮": "餐饮管理有限公司",
    "教育": "教育科技有限公司", "医疗健康": "医疗器械有限公司", "互联网": "网络科技有限公司",
    "物流": "物流有限公司", "金融": "投资管理有限公司", "房地产": "置业有限公司",
}  # fmt: skip
COMPANY_SIZES: Final = (("1-49", 0.45), ("50-199", 0.30), ("200-999", 0.17), ("1000+", 0.08))
INCOME_BANDS: Final = (("<5k", 0.22, 0.6), ("5k-10k", 0.33, 0.85), ("10k-20k", 0.27, 1.1),
                       ("20k-50k", 0.13, 1.6), ("50k+", 0.05, 2.6))  # fmt: skip
CATEGORIES: Final = ((Category.POTENTIAL, 0.30), (Category.INTENDED, 0.24),
                     (Category.PROSPECTIVE, 0.06), (Category.SIGNED, 0.32),
                     (Category.PARTNER, 0.08))  # fmt: skip
SOURCES: Final = ((Channel.STORE, 0.28), (Channel.ONLINE, 0.24), (Channel.APP, 0.14),
                  (Channel.WECHAT, 0.18), (Channel.SOCIAL, 0.08), (Channel.PHONE, 0.05),
                  (Channel.VISIT, 0.03))  # fmt: skip
START_TAGS: Final = ("新客", "会员日", "价格敏感", "高潜", "母婴", "数码达人", "美妆", "小程序")

SURNAMES: Final = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
    ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"), ("彭", "peng"),
)  # fmt: skip
GIVEN: Final = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("霞", "xia"),
    ("婷", "ting"), ("浩", "hao"), ("宇", "yu"), ("欣", "xin"), ("怡", "yi"), ("佳", "jia"),
    ("子", "zi"), ("涵", "han"), ("晨", "chen"), ("睿", "rui"), ("博", "bo"), ("雪", "xue"),
)  # fmt: skip
BRANDS: Final = (("华信", "huaxin"), ("明达", "mingda"), ("恒通", "hengtong"), ("宏远", "hongyuan"),
                 ("鑫源", "xinyuan"), ("瑞丰", "ruifeng"), ("天成", "tiancheng"), ("嘉禾", "jiahe"),
                 ("汇通", "huitong"), ("博雅", "boya"))  # fmt: skip
MAIL_DOMAINS: Final = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "outlook.com")


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    median: float  # typical order value in CNY
    sigma: float  # lognormal spread
    items: tuple[tuple[str, str], ...]  # (sku, name)


def _items(prefix: str, *names: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}-{i}", name) for i, name in enumerate(names, start=1001))


PRODUCTS: Final = {
    "apparel": Product(
        "apparel", 280, 0.7, _items("AP", "羊毛大衣", "运动鞋", "真丝围巾", "牛仔裤")
    ),
    "beauty": Product("beauty", 210, 0.6, _items("BT", "精华液", "面膜礼盒", "口红", "防晒霜")),
    "appliances": Product(
        "appliances", 2100, 0.8, _items("HA", "空气净化器", "扫地机器人", "电饭煲", "变频空调")
    ),
    "digital": Product(
        "digital", 1500, 0.9, _items("DG", "蓝牙耳机", "平板电脑", "智能手表", "手机")
    ),
    "grocery": Product(
        "grocery", 120, 0.6, _items("GR", "五常大米", "坚果礼盒", "龙井茶叶", "年货礼盒")
    ),
    "home": Product("home", 560, 0.8, _items("HM", "乳胶枕", "四件套", "收纳柜")),
    "baby": Product("baby", 300, 0.6, _items("BB", "婴儿奶粉", "纸尿裤", "儿童安全座椅")),
    "b2b": Product("b2b", 6500, 0.9, _items("EN", "办公电脑批量采购", "企业软件年费", "办公耗材")),
}
RETAIL_MIX: Final = (("apparel", 0.2), ("beauty", 0.15), ("appliances", 0.1), ("digital", 0.12),
                     ("grocery", 0.22), ("home", 0.11), ("baby", 0.1))  # fmt: skip
COMPANY_MIX: Final = (("b2b", 0.6), ("digital", 0.2), ("appliances", 0.1), ("grocery", 0.1))


def pick(rng: random.Random, weighted: tuple[tuple[T, float], ...]) -> T:
    """One value from ``((value, weight), …)``."""
    values = [v for v, _ in weighted]
    return rng.choices(values, weights=[w for _, w in weighted])[0]


@dataclass(slots=True)
class Profile:
    """What the timeline needs to know about a customer beyond its registration command."""

    ref: str
    kind: CustomerKind
    category: Category
    owner: str | None
    birthday: date | None
    registered_at: datetime
    spend: float  # multiplier on order values (income or company size)
    mood: float  # satisfaction propensity, N(0, 1); complaints lower it
    products: tuple[tuple[str, float], ...]


def _person(rng: random.Random, n: int) -> tuple[str, str]:
    surname, s_py = rng.choice(SURNAMES)
    given = rng.sample(GIVEN, rng.choice((1, 2, 2)))
    name = surname + "".join(g for g, _ in given)
    handle = "".join(p for _, p in given) + "." + s_py
    return name, f"{handle}{n % 997}@{rng.choice(MAIL_DOMAINS)}"


def _phone(rng: random.Random) -> str:
    prefix = rng.choice(("138", "139", "136", "150", "158", "186", "187", "135", "177", "199"))
    return f"+86 {prefix} {rng.randrange(10000):04d} {rng.randrange(10000):04d}"


def make_customer(
    rng: random.Random, n: int, registered_at: datetime
) -> tuple[Profile, RegisterCustomer]:
    """The ``n``-th demo customer (1-based), registered at ``registered_at`` (a +08:00 time)."""
    ref = f"C-{n:06d}"
    region = rng.choices(list(REGIONS), weights=[w for w, _ in REGIONS.values()])[0]
    city = rng.choice(REGIONS[region][1])
    company = rng.random() < 0.15
    category = pick(rng, CATEGORIES)
    owner = f"staff:{rng.choice(STAFF)}" if rng.random() < 0.85 or company else None
    tags = sorted(set(rng.sample(START_TAGS, rng.choice((0, 1, 1, 2)))) | {"新客"})
    source = pick(rng, SOURCES)
    birthday: date | None = None
    industry: str | None = None
    products: tuple[tuple[str, float], ...]
    if company:
        industry = rng.choice(list(INDUSTRIES))
        brand, b_py = rng.choice(BRANDS)
        name = f"{city}{brand}{INDUSTRIES[industry]}"
        email = f"service{n % 89}@{b_py}{n}.com.cn"
        size = pick(rng, COMPANY_SIZES)
        spend = {"1-49": 0.6, "50-199": 1.0, "200-999": 1.8, "1000+": 3.0}[size]
        income = None
        tags = sorted({*tags, "企业客户"} - {"母婴", "美妆"})
        products = COMPANY_MIX
    else:
        name, email = _person(rng, n)
        size = None
        income, _, spend = rng.choices(INCOME_BANDS, weights=[w for _, w, _ in INCOME_BANDS])[0]
        if rng.random() < 0.4:
            industry = rng.choice(list(INDUSTRIES))
        if rng.random() < 0.8:
            age_days = rng.randint(18 * 365, 68 * 365)
            birthday = registered_at.date() - timedelta(days=age_days)
        products = RETAIL_MIX
    actor = f"user:{owner.split(':')[1]}" if owner and source is Channel.STORE else "system:demo"
    command = RegisterCustomer(
        external_ref=ref,
        kind=CustomerKind.COMPANY if company else CustomerKind.INDIVIDUAL,
        category=category,
        region=region,
        industry=industry,
        company_size=size,
        income_band=income,
        source_channel=source,
        name=name,
        email=email if rng.random() < 0.9 else None,
        phone=_phone(rng),
        birthday=birthday,
        owner=owner,
        tags=tags,
        occurred_at=registered_at,
        actor=actor,
    )
    profile = Profile(
        ref=ref,
        kind=command.kind,
        category=category,
        owner=owner,
        birthday=birthday,
        registered_at=registered_at,
        spend=spend * rng.lognormvariate(0, 0.3),
        mood=rng.gauss(0, 1),
        products=products,
    )
    return profile, command


# Spring Festival (春节) dates: shopping peaks in the weeks before, and stops during the holiday.
SPRING_FESTIVAL: Final = {
    2020: date(2020, 1, 25), 2021: date(2021, 2, 12), 2022: date(2022, 2, 1),
    2023: date(2023, 1, 22), 2024: date(2024, 2, 10), 2025: date(2025, 1, 29),
    2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
    2029: date(2029, 2, 13), 2030: date(2030, 2, 3),
}  # fmt: skip
SEASON_MAX: Final = 2.6


def spring_festival(year: int) -> date:
    return SPRING_FESTIVAL.get(year, date(year, 2, 1))


def season(day: date) -> float:
    """Relative purchase intensity on ``day`` (1.0 = an ordinary day; at most ``SEASON_MAX``)."""
    sf = spring_festival(day.year if day.month < 7 else day.year + 1)
    to_sf = (sf - day).days
    if 1 <= to_sf <= 21:
        return 1.9  # 年货节: New Year goods
    if -7 <= to_sf <= 0:
        return 0.5  # the holiday itself
    if day.month == 11:
        return 2.6 if day.day <= 11 else 1.5  # 双十一
    if day.month == 12:
        return 1.8 if 8 <= day.day <= 12 else 1.3  # 双十二, year-end
    if day.month == 6 and day.day <= 18:
        return 1.5  # 618
    return 1.0


def clock(rng: random.Random, day: date) -> datetime:
    """A plausible business time on ``day``: shops and service desks, evenings for online."""
    hour = rng.choices(range(8, 23), weights=(1, 3, 5, 5, 4, 3, 4, 4, 3, 3, 3, 4, 5, 4, 2))[0]
    return datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=CST)


def to_cst(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    return moment.astimezone(CST)


def default_end() -> datetime:
    """Now, rounded down to the hour, minus one hour."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (now - timedelta(hours=1)).astimezone(CST)

"""The seed event taxonomy: departments, categories, SLA hours and the starting keyword library.

These are starting values, edited afterwards in the admin; :func:`taxonomy_seed` inserts what is
missing and never overwrites an edit. The migration ``0005_events`` calls it with its historical
models; tests call it to restore the rows a transactional test flushed.
"""

from __future__ import annotations

#: The department that takes joint cases (联合处置) no single department owns.
COMMAND_CENTER = "command_center"

#: (code, name, English name)
DEPARTMENTS = (
    (COMMAND_CENTER, "市域社会治理指挥中心", "Command center"),
    ("urban_management", "城管局", "Urban management bureau"),
    ("housing", "住建局", "Housing and construction bureau"),
    ("emergency", "应急管理局", "Emergency management bureau"),
    ("fire", "消防救援支队", "Fire and rescue"),
    ("ecology", "生态环境局", "Ecology and environment bureau"),
    ("market", "市场监管局", "Market regulation bureau"),
    ("police", "公安局", "Public security bureau"),
    ("justice", "司法局", "Justice bureau (people's mediation)"),
    ("hrss", "人社局", "Human resources and social security bureau"),
    ("petition", "信访局", "Letters and visits bureau"),
    ("heating", "供热办", "Heating office"),
    ("water", "水务局", "Water affairs bureau"),
    ("natural_resources", "自然资源局", "Natural resources bureau"),
    ("transport", "交通运输局", "Transport bureau"),
    ("power", "供电公司", "Power supply company"),
    ("civil_affairs", "民政局", "Civil affairs bureau"),
    ("women_federation", "妇联", "Women's federation"),
)

#: (code, name, English name, default department, lowest responsible level). A bare family code
#: is the category "subtype not yet known".
CATEGORIES = (
    ("dispute", "矛盾纠纷", "Dispute", "justice", "community"),
    ("dispute.neighbour", "邻里纠纷", "Neighbour dispute", "justice", "community"),
    ("dispute.family", "婚姻家庭纠纷", "Marriage and family dispute", "women_federation", "community"),
    ("dispute.property", "物业纠纷", "Property management dispute", "housing", "community"),
    ("dispute.labour", "劳资纠纷", "Labour dispute", "hrss", "street"),
    ("dispute.land", "土地纠纷", "Land dispute", "natural_resources", "street"),
    ("dispute.contract", "合同纠纷", "Contract dispute", "justice", "street"),
    ("dispute.other", "其他纠纷", "Other dispute", "justice", "community"),
    ("hazard", "安全隐患", "Safety hazard", "emergency", "community"),
    ("hazard.fire", "消防隐患", "Fire hazard", "fire", "community"),
    ("hazard.gas", "燃气隐患", "Gas hazard", "housing", "street"),
    ("hazard.building", "房屋安全隐患", "Building safety hazard", "housing", "street"),
    ("hazard.road", "道路交通隐患", "Road traffic hazard", "transport", "street"),
    ("hazard.electricity", "用电隐患", "Electrical hazard", "power", "community"),
    ("hazard.food", "食品安全隐患", "Food safety hazard", "market", "street"),
    ("hazard.flood", "防汛隐患", "Flood hazard", "water", "street"),
    ("hazard.other", "其他隐患", "Other hazard", "emergency", "community"),
    ("environment", "环境卫生", "Environment and sanitation", "urban_management", "community"),
    ("environment.garbage", "垃圾清运", "Garbage", "urban_management", "community"),
    ("environment.noise", "噪声扰民", "Noise", "ecology", "community"),
    ("environment.pollution", "环境污染", "Pollution", "ecology", "street"),
    ("municipal", "市政设施", "Municipal facility", "urban_management", "community"),
    ("municipal.streetlight", "路灯", "Streetlight", "urban_management", "community"),
    ("municipal.manhole", "井盖", "Manhole cover", "urban_management", "community"),
    ("municipal.water", "供水", "Water supply", "water", "street"),
    ("municipal.heating", "供暖", "Heating", "heating", "street"),
    ("consultation", "咨询", "Consultation", None, "community"),
    ("suggestion", "建议", "Suggestion", "petition", "community"),
)

#: Hours to resolve, per family at each responsible level (community, street, district, city).
#: Hazards are urgent; a higher level gets less time because the case is already late.
SLA_HOURS = {
    "dispute": (72, 48, 48, 24),
    "hazard": (24, 12, 8, 4),
    "environment": (72, 48, 24, 24),
    "municipal": (72, 48, 24, 24),
    "consultation": (24, 24, 24, 24),
    "suggestion": (168, 120, 72, 72),
}
LEVELS = ("community", "street", "district", "city")

#: (keyword, department, priority, category restriction or None). Danger to life outranks the
#: rest (20), then the owning department of a thing (10).
KEYWORDS = (
    ("火灾", "fire", 20, None),
    ("着火", "fire", 20, None),
    ("冒烟", "fire", 20, None),
    ("燃气泄漏", "fire", 20, None),
    ("煤气味", "fire", 20, None),
    ("消防通道", "fire", 10, None),
    ("灭火器", "fire", 10, None),
    ("打架", "police", 20, None),
    ("斗殴", "police", 20, None),
    ("盗窃", "police", 20, None),
    ("燃气", "housing", 10, None),
    ("天然气", "housing", 10, None),
    ("物业", "housing", 10, None),
    ("危房", "housing", 10, None),
    ("裂缝", "housing", 10, None),
    ("违建", "urban_management", 10, None),
    ("违章建筑", "urban_management", 10, None),
    ("占道", "urban_management", 10, None),
    ("垃圾", "urban_management", 10, None),
    ("路灯", "urban_management", 10, None),
    ("井盖", "urban_management", 10, None),
    ("噪音", "ecology", 10, None),
    ("噪声", "ecology", 10, None),
    ("油烟", "ecology", 10, None),
    ("污水", "ecology", 10, None),
    ("废气", "ecology", 10, None),
    ("停水", "water", 10, None),
    ("漏水", "water", 10, None),
    ("爆管", "water", 10, None),
    ("积水", "water", 10, None),
    ("暖气", "heating", 10, None),
    ("供暖", "heating", 10, None),
    ("停电", "power", 10, None),
    ("电线", "power", 10, None),
    ("拖欠工资", "hrss", 10, None),
    ("欠薪", "hrss", 10, None),
    ("电梯", "market", 10, None),
    ("过期食品", "market", 10, None),
    ("宅基地", "natural_resources", 10, None),
    ("红绿灯", "transport", 10, None),
    ("低保", "civil_affairs", 10, None),
    ("家暴", "women_federation", 10, "dispute"),
)


def taxonomy_seed(*, models=None) -> dict[str, int]:
    """Insert the seed rows that are missing (matched by code, family and level, or keyword);
    rows that exist are left as the admin edited them. ``models`` maps model names to the
    classes to use (the migration passes its historical models). Returns rows created per table."""
    if models is None:
        from .models import Category, Department, KeywordRule, SlaRule

        models = {"Category": Category, "Department": Department, "KeywordRule": KeywordRule, "SlaRule": SlaRule}
    Department, Category = models["Department"], models["Category"]
    SlaRule, KeywordRule = models["SlaRule"], models["KeywordRule"]
    created = dict.fromkeys(("department", "category", "sla", "keyword"), 0)
    departments = {}
    for code, name, name_en in DEPARTMENTS:
        departments[code], new = Department.objects.get_or_create(
            code=code, defaults={"name": name, "name_en": name_en}
        )
        created["department"] += new
    categories = {}
    for code, name, name_en, department, min_level in CATEGORIES:
        categories[code], new = Category.objects.get_or_create(
            code=code,
            defaults={
                "family": code.split(".")[0],
                "name": name,
                "name_en": name_en,
                "department": departments.get(department),
                "min_level": min_level,
            },
        )
        created["category"] += new
    for family, hours in SLA_HOURS.items():
        for level, value in zip(LEVELS, hours, strict=True):
            _, new = SlaRule.objects.get_or_create(family=family, level=level, defaults={"hours": value})
            created["sla"] += new
    for keyword, department, priority, category in KEYWORDS:
        _, new = KeywordRule.objects.get_or_create(
            keyword=keyword,
            department=departments[department],
            category=categories.get(category),
            defaults={"priority": priority},
        )
        created["keyword"] += new
    return created

"""The embedded demo store: a synthetic catalogue with pictures, users with latent tastes and sessioned histories."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.constants import (
    EVENT_COL,
    EVENTS,
    ITEM_COL,
    TIME_COL,
    TITLE_COL,
    USER_COL,
)
from engine.data.demo_pictures import ProductPainter
from engine.data.tables import write_dataset

START = np.datetime64("2024-01-01T00:00:00", "s")  # fixed, so that the output depends on the seed only
NEW_ARRIVAL_DAYS = 21  # new arrivals appear within the last three weeks
NEW_SHARE = 0.08  # share of the catalogue that is new arrivals
REGIONS = ("North", "South", "East", "West", "Central")
# Shop-sized stores: above these sizes the tables are Parquet (a CSV of 27 million events takes
# minutes to write and read) and items share one picture per (category, colour, shape variant),
# so 100,000 items need about a thousand pictures instead of 100,000.
PARQUET_ABOVE_USERS = 20_000
SHARED_PICTURES_ABOVE_ITEMS = 10_000

# Named product colours and the RGB the pictures are filled with.
COLORS: dict[str, tuple[int, int, int]] = {
    "Black": (34, 34, 38),
    "White": (250, 250, 248),
    "Charcoal": (74, 78, 86),
    "Silver": (190, 194, 200),
    "Navy": (32, 52, 104),
    "Sky Blue": (110, 170, 225),
    "Teal": (0, 128, 128),
    "Forest Green": (34, 110, 60),
    "Olive": (122, 128, 52),
    "Sage": (150, 180, 140),
    "Mustard": (220, 170, 40),
    "Orange": (240, 122, 40),
    "Crimson": (190, 25, 45),
    "Burgundy": (122, 28, 52),
    "Blush Pink": (240, 172, 182),
    "Lavender": (176, 152, 216),
    "Sand": (216, 196, 160),
    "Tan": (192, 142, 92),
    "Brown": (110, 72, 42),
}
# Colours of the small per-item accent mark (a stripe, a logo dot, a belt...).
_ACCENT_COLORS = ("White", "Black", "Crimson", "Mustard", "Sky Blue", "Orange", "Teal", "Lavender")

# Product-line words that open most titles ("Aurora Crimson Leather Sneaker").
_LINES = (
    "Aurora", "Nova", "Summit", "Drift", "Echo", "Pulse", "Zen", "Atlas", "Vista", "Luma", "Terra", "Orbit",
    "Flux", "Haven", "Sierra", "Coast", "Metro", "Ember", "Alto", "Boreal", "Cirrus", "Dune", "Fjord", "Halo",
    "Juniper", "Kestrel", "Lark", "Meridian", "Nimbus", "Onyx", "Pioneer", "Quartz", "Ridge", "Solstice",
)


@dataclass(frozen=True)
class _Category:
    """Vocabularies and ranges of one product category."""

    name: str
    template: str  # drawing template in engine.data.demo_pictures
    share: float  # relative size of the category in the catalogue
    price: tuple[float, float]  # cheapest and dearest price
    brands: tuple[tuple[str, int], ...]  # (brand, tier: 0 budget, 1 mid, 2 premium)
    nouns: tuple[tuple[str, int], ...]  # (noun, picture shape variant)
    materials: tuple[str, ...]
    styles: tuple[str, ...]
    uses: tuple[str, ...]
    colors: tuple[str, ...]
    title: str = "{line} {color} {material} {noun}"
    description: str = "{a} {style} {noun_lower} in {material_lower}, made for {use}."
    extras: tuple[str, ...] = ("",)  # model numbers and sizes for {extra}
    lines: tuple[str, ...] = _LINES


CATEGORIES: tuple[_Category, ...] = (
    _Category(
        "Sneakers", "sneaker", 1.2, (39, 189),
        (("Stride", 1), ("Peakline", 2), ("Kickfield", 0), ("Velo", 1), ("Aurum Athletics", 2)),
        (("Sneaker", 0), ("Running Shoe", 0), ("Trainer", 0), ("High-Top Sneaker", 1)),
        ("Leather", "Mesh", "Suede", "Canvas", "Knit"),
        ("retro", "minimalist", "cushioned", "lightweight", "court-inspired"),
        ("everyday walks", "long runs", "the gym", "city days", "weekend wear"),
        ("White", "Black", "Crimson", "Navy", "Sky Blue", "Orange", "Charcoal", "Sand", "Forest Green"),
    ),
    _Category(
        "T-Shirts", "tshirt", 1.3, (9, 45),
        (("Basico", 0), ("Threadline", 1), ("Stride", 1), ("Maison Lune", 2), ("Northpeak", 1)),
        (("T-Shirt", 0), ("Crew Tee", 0), ("V-Neck Tee", 1), ("Pocket Tee", 0)),
        ("Cotton", "Organic Cotton", "Linen", "Jersey", "Bamboo"),
        ("relaxed", "slim-fit", "boxy", "classic", "oversized"),
        ("everyday layering", "warm days", "workouts", "lounging at home"),
        ("White", "Black", "Navy", "Crimson", "Mustard", "Sage", "Blush Pink", "Charcoal", "Sky Blue", "Olive", "Lavender"),
    ),
    _Category(
        "Dresses", "dress", 1.0, (35, 260),
        (("Maison Lune", 2), ("Basico", 0), ("Verano", 1), ("Atelier Noor", 2), ("Threadline", 1)),
        (("Midi Dress", 0), ("Maxi Dress", 0), ("Slip Dress", 0), ("Tea Dress", 1), ("Sundress", 1)),
        ("Silk", "Linen", "Cotton", "Satin", "Chiffon"),
        ("flowing", "tailored", "pleated", "A-line", "bias-cut"),
        ("summer evenings", "the office", "weddings", "weekend brunch"),
        ("Crimson", "Navy", "Blush Pink", "Lavender", "Black", "Mustard", "Sage", "Burgundy", "White", "Teal"),
    ),
    _Category(
        "Trousers", "trousers", 1.0, (25, 140),
        (("Threadline", 1), ("Basico", 0), ("Northpeak", 1), ("Maison Lune", 2), ("Stride", 1)),
        (("Chinos", 0), ("Trousers", 0), ("Cargo Pants", 0), ("Joggers", 1)),
        ("Cotton Twill", "Wool", "Linen", "Denim", "Fleece"),
        ("straight-leg", "tapered", "relaxed", "pleated", "stretch"),
        ("the office", "travel days", "weekend errands", "cool evenings"),
        ("Navy", "Black", "Sand", "Olive", "Charcoal", "Tan", "Burgundy", "Sky Blue"),
    ),
    _Category(
        "Bags", "bag", 1.0, (25, 420),
        (("Northpeak", 1), ("Maison Lune", 2), ("Carryall", 0), ("Atelier Noor", 2), ("Trailhead", 1)),
        (("Tote Bag", 0), ("Handbag", 0), ("Satchel", 0), ("Backpack", 1), ("Daypack", 1)),
        ("Leather", "Canvas", "Nylon", "Suede", "Recycled Polyester"),
        ("structured", "slouchy", "roomy", "compact", "water-resistant"),
        ("the commute", "weekend trips", "carrying a laptop", "evenings out"),
        ("Black", "Tan", "Brown", "Navy", "Crimson", "Sand", "Olive", "Burgundy", "Blush Pink"),
    ),
    _Category(
        "Watches", "watch", 0.8, (30, 650),
        (("Chronos", 2), ("Tempo", 1), ("Voltix", 1), ("Aurum", 2), ("Ticker", 0)),
        (("Watch", 0), ("Chronograph", 0), ("Dress Watch", 0), ("Smartwatch", 1)),
        ("Leather", "Steel", "Silicone", "Titanium", "Nylon"),
        ("classic", "sporty", "minimalist", "rugged", "elegant"),
        ("everyday wear", "training", "formal occasions", "travel"),
        ("Black", "Navy", "Brown", "Tan", "Silver", "Forest Green", "Burgundy", "White", "Sky Blue"),
        description="{a} {style} {noun_lower} with a {material_lower} strap, made for {use}.",
    ),
    _Category(
        "Phones", "phone", 0.6, (149, 1299),
        (("Voltix", 1), ("Lumen", 2), ("Pixelon", 1), ("Kiro", 0), ("Aether", 2)),
        (("Smartphone", 0), ("Phone", 0), ("Smartphone", 1)),
        ("Aluminium", "Glass", "Titanium", "Recycled Plastic"),
        ("slim", "flagship", "compact", "long-lasting", "camera-first"),
        ("mobile photography", "all-day battery life", "gaming on the go", "staying connected"),
        ("Black", "White", "Silver", "Navy", "Lavender", "Sage", "Blush Pink", "Charcoal", "Sky Blue"),
        title="{line} {extra} {color} {noun}",
        description="{a} {style} {noun_lower} with a {material_lower} body, made for {use}.",
        extras=("8", "9 Pro", "X2", "12", "12 Mini", "Max", "Lite", "S5", "10 Plus", "Edge"),
    ),
    _Category(
        "Phone Accessories", "accessory", 1.0, (8, 60),
        (("Voltix", 1), ("Kiro", 0), ("Shellguard", 0), ("Lumen", 2), ("Pixelon", 1)),
        (("Phone Case", 0), ("Slim Case", 0), ("Wall Charger", 1), ("Fast Charger", 1)),
        ("Silicone", "Leather", "Recycled Plastic", "TPU", "Braided Nylon"),
        ("slim", "rugged", "fast-charging", "shock-absorbing", "compact"),
        ("everyday protection", "travel", "the bedside table", "quick top-ups"),
        ("Black", "White", "Crimson", "Navy", "Lavender", "Sage", "Blush Pink", "Mustard", "Sky Blue", "Orange"),
    ),
    _Category(
        "Headphones", "headphones", 0.8, (25, 450),
        (("Voltix", 1), ("Sonara", 2), ("Lumen", 2), ("Kiro", 0), ("Beatline", 1)),
        (("Over-Ear Headphones", 0), ("Wireless Headphones", 0), ("Noise-Cancelling Headphones", 0), ("On-Ear Headphones", 1)),
        ("Aluminium", "Protein Leather", "Matte Plastic", "Memory Foam"),
        ("noise-cancelling", "lightweight", "studio-tuned", "foldable", "bass-heavy"),
        ("long flights", "the commute", "focused work", "workouts"),
        ("Black", "White", "Silver", "Navy", "Sand", "Crimson", "Forest Green", "Sky Blue", "Charcoal"),
    ),
    _Category(
        "Laptops", "laptop", 0.5, (349, 2399),
        (("Lumen", 2), ("Pixelon", 1), ("Voltix", 1), ("Aether", 2), ("Kiro", 0)),
        (("Laptop", 0), ("Ultrabook", 0), ("Notebook", 0)),
        ("Aluminium", "Magnesium", "Recycled Aluminium", "Carbon Fibre"),
        ("thin and light", "powerful", "fanless", "long-battery", "creator-grade"),
        ("students", "remote work", "video editing", "coding on the go"),
        ("Silver", "Charcoal", "Black", "Sand", "Sky Blue", "White", "Navy"),
        title="{line} {extra} {color} {noun}",
        description="{a} {style} {noun_lower} with a {material_lower} chassis, made for {use}.",
        extras=("13", "14", "14 Pro", "15 Air", "16", "16 Max", "13 Go"),
    ),
    _Category(
        "Lamps", "lamp", 0.8, (19, 240),
        (("Hearth & Co", 1), ("Nordlys", 2), ("Casa Basics", 0), ("Lumenhaus", 1), ("Oakline", 1)),
        (("Table Lamp", 0), ("Bedside Lamp", 0), ("Desk Lamp", 1), ("Task Lamp", 1)),
        ("Linen", "Brass", "Ceramic", "Oak", "Matte Metal"),
        ("Scandinavian", "mid-century", "dimmable", "industrial", "warm-glow"),
        ("reading corners", "home offices", "bedside tables", "living rooms"),
        ("White", "Sand", "Mustard", "Sage", "Navy", "Black", "Blush Pink", "Teal", "Tan"),
    ),
    _Category(
        "Mugs", "mug", 1.0, (6, 38),
        (("Hearth & Co", 1), ("Casa Basics", 0), ("Kiln & Co", 2), ("Morning Ritual", 1), ("Nordlys", 2)),
        (("Mug", 0), ("Coffee Mug", 0), ("Tea Mug", 0), ("Latte Mug", 1)),
        ("Stoneware", "Porcelain", "Enamel", "Ceramic", "Bone China"),
        ("hand-glazed", "speckled", "classic", "oversized", "stackable"),
        ("slow mornings", "the office", "afternoon tea", "camping trips"),
        ("White", "Black", "Crimson", "Navy", "Mustard", "Sage", "Blush Pink", "Teal", "Sky Blue", "Lavender", "Orange"),
    ),
    _Category(
        "Books", "book", 1.3, (8, 45),
        (("Pagecraft", 1), ("Inkwell Press", 1), ("Northwind Books", 0), ("Folio House", 2), ("Lantern", 1)),
        (("Harbor", 0), ("Garden", 1), ("Orchard", 0), ("Lighthouse", 1), ("Kingdom", 0), ("Atlas", 1),
         ("River", 0), ("Archive", 1), ("Voyage", 0), ("Winter", 1), ("Island", 0), ("Promise", 1), ("Letters", 0),
         ("Mountain", 1), ("Season", 0), ("Map", 1), ("Crossing", 0), ("Tide", 1), ("Station", 0), ("Clockmaker", 1)),
        ("Mystery Novel", "Memoir", "Fantasy Saga", "Thriller", "Story Collection", "History"),
        ("gripping", "heartfelt", "witty", "sweeping", "quiet", "page-turning"),
        ("family secrets", "a coastal town", "a lost expedition", "first love", "a changing city", "an unlikely friendship"),
        ("Navy", "Crimson", "Forest Green", "Mustard", "Teal", "Burgundy", "Black", "Sand", "Sky Blue", "Orange", "Lavender"),
        title="The {line} {noun}",
        description="{a} {style} {material_lower} about {use}.",
        lines=("Silent", "Hidden", "Last", "Winter", "Golden", "Quiet", "Distant", "Forgotten", "Northern", "Paper",
               "Glass", "Salt", "Midnight", "Wandering", "Secret", "Burning", "Little", "Iron", "Lost", "Summer",
               "Amber", "Hollow", "Second", "Borrowed", "Crooked", "Painted", "Sleeping", "Bright", "Far", "Velvet"),
    ),
    _Category(
        "Sunglasses", "sunglasses", 0.7, (15, 320),
        (("Solace", 1), ("Riviera", 2), ("Shade Co", 0), ("Northpeak", 1), ("Maison Lune", 2)),
        (("Sunglasses", 0), ("Square Sunglasses", 0), ("Round Sunglasses", 1)),
        ("Acetate", "Metal", "Recycled Plastic", "Bio-Acetate", "Titanium"),
        ("polarised", "vintage", "oversized", "lightweight", "bold"),
        ("beach days", "city walks", "road trips", "mountain hikes"),
        ("Black", "Tan", "Crimson", "Navy", "White", "Sand", "Burgundy", "Forest Green", "Blush Pink"),
    ),
    _Category(
        "Hats", "hat", 0.8, (12, 60),
        (("Northpeak", 1), ("Stride", 1), ("Basico", 0), ("Trailhead", 1), ("Peakline", 2)),
        (("Baseball Cap", 0), ("Cap", 0), ("Beanie", 1), ("Knit Beanie", 1)),
        ("Cotton", "Wool", "Recycled Polyester", "Corduroy", "Merino"),
        ("classic", "breathable", "cosy", "adjustable", "packable"),
        ("sunny days", "cold mornings", "trail runs", "everyday wear"),
        ("Navy", "Black", "Crimson", "Olive", "Sand", "Mustard", "Forest Green", "White", "Orange", "Burgundy"),
    ),
    _Category(
        "Plants", "plant", 0.7, (12, 120),
        (("Greenhaus", 1), ("Leaf & Loam", 2), ("Sprout", 0), ("Casa Basics", 0), ("Urban Jungle", 1)),
        (("Monstera", 0), ("Fiddle Leaf Fig", 0), ("Pothos", 0), ("Peace Lily", 0), ("Snake Plant", 1), ("ZZ Plant", 1)),
        ("Ceramic", "Terracotta", "Concrete", "Glazed"),
        ("easy-care", "air-purifying", "low-light tolerant", "fast-growing", "statement"),
        ("bright corners", "bathrooms", "shady offices", "sunny windowsills", "living rooms"),
        ("White", "Black", "Sand", "Tan", "Sage", "Blush Pink", "Charcoal", "Navy", "Mustard", "Teal"),
        title="{extra} {noun} in {color} {material} Pot",
        extras=("Small", "Medium", "Large", "Mini"),
        description="{a} {style} {noun_lower} in a {material_lower} pot, happy in {use}.",
    ),
)
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)

# Sequential intent: after a purchase in the key category, the next browse is likely one of these.
COMPLEMENTS: dict[str, dict[str, float]] = {
    "Phones": {"Phone Accessories": 0.6, "Headphones": 0.3, "Watches": 0.1},
    "Laptops": {"Bags": 0.4, "Headphones": 0.35, "Phone Accessories": 0.15, "Lamps": 0.1},
    "Dresses": {"Sneakers": 0.35, "Bags": 0.4, "Sunglasses": 0.25},
    "Sneakers": {"T-Shirts": 0.4, "Trousers": 0.3, "Hats": 0.3},
    "T-Shirts": {"Trousers": 0.45, "Sneakers": 0.35, "Hats": 0.2},
    "Trousers": {"T-Shirts": 0.5, "Sneakers": 0.5},
    "Bags": {"Watches": 0.35, "Sunglasses": 0.35, "Dresses": 0.3},
    "Watches": {"Bags": 0.5, "Sunglasses": 0.5},
    "Headphones": {"Phone Accessories": 0.6, "Phones": 0.4},
    "Phone Accessories": {"Headphones": 0.6, "Phone Accessories": 0.4},
    "Lamps": {"Plants": 0.5, "Mugs": 0.3, "Books": 0.2},
    "Mugs": {"Books": 0.4, "Plants": 0.3, "Lamps": 0.3},
    "Books": {"Mugs": 0.5, "Lamps": 0.3, "Books": 0.2},
    "Sunglasses": {"Hats": 0.5, "Bags": 0.5},
    "Hats": {"Sunglasses": 0.6, "T-Shirts": 0.4},
    "Plants": {"Lamps": 0.5, "Mugs": 0.5},
}


@dataclass(frozen=True)
class _Taste:
    """A latent shopper segment: preferences over categories, colours, brands and price level."""

    name: str
    share: float
    categories: dict[str, float]
    colors: tuple[str, ...]
    price_level: float  # 0 = cheapest of a category, 1 = dearest
    brands: tuple[str, ...]
    age: float  # mean age
    club: float  # share of club members
    regions: tuple[float, ...]  # relative weights over REGIONS


TASTES: tuple[_Taste, ...] = (
    _Taste("sporty", 0.14,
           {"Sneakers": .24, "T-Shirts": .18, "Trousers": .1, "Hats": .1, "Headphones": .1, "Watches": .08,
            "Sunglasses": .06, "Bags": .06},
           ("Black", "White", "Orange", "Sky Blue", "Crimson"), 0.5, ("Stride", "Peakline", "Kickfield"),
           29, 0.35, (1, 1, 1, 1.5, 1)),
    _Taste("tech enthusiast", 0.14,
           {"Phones": .2, "Phone Accessories": .2, "Headphones": .18, "Laptops": .16, "Watches": .1, "Lamps": .04,
            "Bags": .04},
           ("Black", "Charcoal", "Silver", "Navy"), 0.7, ("Voltix", "Lumen", "Aether", "Sonara"),
           32, 0.4, (1, 1, 1, 1, 1.8)),
    _Taste("home & kitchen", 0.13,
           {"Mugs": .26, "Lamps": .2, "Plants": .2, "Books": .1},
           ("Sage", "Sand", "White", "Teal", "Mustard"), 0.45, ("Hearth & Co", "Nordlys", "Greenhaus", "Kiln & Co"),
           43, 0.4, (1, 1.5, 1, 1, 1)),
    _Taste("bookworm", 0.1,
           {"Books": .45, "Mugs": .14, "Lamps": .1, "Plants": .07, "Bags": .04},
           ("Navy", "Burgundy", "Forest Green", "Sand"), 0.4, ("Inkwell Press", "Folio House", "Lantern"),
           47, 0.3, (1, 1, 1.6, 1, 1)),
    _Taste("fashion-forward", 0.15,
           {"Dresses": .22, "Bags": .15, "Sneakers": .1, "Sunglasses": .12, "Hats": .07, "T-Shirts": .1,
            "Watches": .06, "Trousers": .06},
           ("Blush Pink", "Lavender", "Crimson", "Mustard", "White"), 0.62, ("Maison Lune", "Atelier Noor", "Verano"),
           27, 0.35, (1, 1, 1, 1, 1.6)),
    _Taste("budget basics", 0.14,
           {"T-Shirts": .18, "Phone Accessories": .15, "Mugs": .12, "Trousers": .12, "Hats": .08, "Books": .08,
            "Sneakers": .06, "Headphones": .05},
           ("Black", "Navy", "White", "Charcoal"), 0.05, ("Basico", "Kiro", "Casa Basics", "Kickfield", "Shade Co"),
           24, 0.15, (1, 1.4, 1, 1, 1)),
    _Taste("outdoor", 0.1,
           {"Hats": .14, "Sunglasses": .13, "Bags": .15, "Trousers": .12, "Sneakers": .12, "Plants": .06,
            "Watches": .08, "T-Shirts": .06},
           ("Olive", "Forest Green", "Tan", "Sand", "Orange"), 0.5, ("Northpeak", "Trailhead", "Peakline"),
           38, 0.3, (2, 1, 1, 1.3, 1)),
    _Taste("luxury", 0.1,
           {"Watches": .22, "Bags": .2, "Dresses": .1, "Sunglasses": .1, "Laptops": .08, "Phones": .08,
            "Headphones": .06, "Lamps": .04},
           ("Black", "Burgundy", "Tan", "Brown", "Silver"), 0.95,
           ("Maison Lune", "Chronos", "Riviera", "Aether", "Atelier Noor", "Aurum"),
           47, 0.6, (1, 1, 1, 1.3, 1.5)),
)
TASTE_NAMES = tuple(t.name for t in TASTES)

# Behaviour knobs of the event simulation.
_P_STAY = 0.45  # next browse within a session stays in the same category
_P_COMPLEMENT = 0.65  # after a purchase, the next browse goes to a complement category
_P_REVISIT = 0.35  # after a cart without purchase, the next browse returns to the same item
_ZIPF = 0.95  # exponent of within-category popularity
_PLURAL_NOUNS = ("Headphones", "Sunglasses", "Pants", "Trousers", "Chinos", "Joggers")


def _roman(n: int) -> str:
    """Roman numeral for a small positive integer (title suffixes such as "II")."""
    numerals = ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, glyph in numerals:
        while n >= value:
            out, n = out + glyph, n - value
    return out


def _article(word: str, noun: str) -> str:
    """The indefinite article before ``word``; none before a plural noun ("noise-cancelling headphones")."""
    if noun.endswith(_PLURAL_NOUNS):
        return ""
    return "An" if word[0].lower() in "aeiou" else "A"


def _category_sizes(n_items: int) -> np.ndarray:
    """Items per category in proportion to the shares, summing to n_items (largest remainders first)."""
    shares = np.array([c.share for c in CATEGORIES])
    exact = shares / shares.sum() * n_items
    sizes = np.floor(exact).astype(int)
    extra = n_items - sizes.sum()
    sizes[np.argsort(-(exact - sizes), kind="stable")[:extra]] += 1
    return sizes


def _make_items(rng: np.random.Generator, n_items: int, n_days: int) -> dict[str, np.ndarray]:
    """Catalogue attributes, one array per field, items grouped by category (blocks in CATEGORIES order)."""
    sizes = _category_sizes(n_items)
    cols: dict[str, list] = {k: [] for k in ("category", "brand", "tier", "title", "description", "color", "variant",
                                             "template", "q")}
    for cat, n in zip(CATEGORIES, sizes):
        brand = rng.integers(len(cat.brands), size=n)
        noun = rng.integers(len(cat.nouns), size=n)
        material = rng.integers(len(cat.materials), size=n)
        style = rng.integers(len(cat.styles), size=n)
        use = rng.integers(len(cat.uses), size=n)
        color = rng.integers(len(cat.colors), size=n)
        line = rng.integers(len(cat.lines), size=n)
        extra = rng.integers(len(cat.extras), size=n)
        tier = np.array([cat.brands[b][1] for b in brand])
        # Price position inside the category's range: set mostly by the brand's tier.
        q = np.clip((tier + rng.beta(2.0, 2.0, size=n)) / 3.0, 0.0, 1.0)
        for k in range(n):
            noun_text, variant = cat.nouns[noun[k]]
            material_text = cat.materials[material[k]]
            style_text = cat.styles[style[k]]
            slots = {
                "line": cat.lines[line[k]], "color": cat.colors[color[k]], "material": material_text,
                "noun": noun_text, "extra": cat.extras[extra[k]], "style": style_text, "use": cat.uses[use[k]],
                "noun_lower": noun_text.lower(), "a": _article(style_text, noun_text),
                # Acronyms such as TPU keep their capitals inside a sentence.
                "material_lower": material_text if material_text.isupper() else material_text.lower(),
            }
            cols["title"].append(" ".join(cat.title.format(**slots).split()))
            text = cat.description.format(**slots).strip()
            cols["description"].append(text[0].upper() + text[1:])
            cols["variant"].append(variant)
        cols["category"] += [cat.name] * n
        cols["template"] += [cat.template] * n
        cols["brand"] += [cat.brands[b][0] for b in brand]
        cols["color"] += [cat.colors[c] for c in color]
        cols["tier"].append(tier)
        cols["q"].append(q)
    out = {k: np.asarray(v, dtype=object) for k, v in cols.items() if k not in ("tier", "q", "variant")}
    out["tier"] = np.concatenate(cols["tier"])
    out["q"] = np.concatenate(cols["q"])
    out["variant"] = np.asarray(cols["variant"], dtype=np.int64)
    out["cat"] = np.repeat(np.arange(len(CATEGORIES)), sizes)
    lo = np.array([c.price[0] for c in CATEGORIES])[out["cat"]]
    hi = np.array([c.price[1] for c in CATEGORIES])[out["cat"]]
    raw = lo * (hi / lo) ** out["q"]
    # Shop-like prices: x.99 below 20, else a multiple of 5 minus a cent.
    out["price"] = np.where(raw < 20, np.floor(raw) + 0.99, np.maximum(np.round(raw / 5) * 5, 20) - 0.01).round(2)

    # Titles repeat now and then; later copies get a roman numeral ("... Sneaker II").
    titles = pd.Series(out["title"])
    dup = titles.groupby(titles, sort=False).cumcount().to_numpy()
    out["title"] = np.array([t if d == 0 else f"{t} {_roman(d + 1)}" for t, d in zip(out["title"], dup)], dtype=object)

    # Zipf-like popularity within each category, over a random ranking.
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.concatenate([rng.permutation(n) for n in sizes])
    out["pop"] = 1.0 / (rank + 1.0) ** _ZIPF

    # New arrivals: never the first item of a block, so that every category keeps an older item.
    candidates = np.setdiff1d(np.arange(n_items), starts)
    n_new = min(int(round(NEW_SHARE * n_items)), len(candidates))
    new = np.zeros(n_items, dtype=bool)
    new[rng.choice(candidates, size=n_new, replace=False)] = True
    created_day = -rng.integers(1, 400, size=n_items)  # days before START
    created_day[new] = rng.integers(max(n_days - NEW_ARRIVAL_DAYS, 1), n_days, size=n_new)
    out["new"] = new
    out["created_day"] = created_day
    out["accent"] = rng.integers(len(_ACCENT_COLORS), size=n_items)
    out["accent_kind"] = rng.integers(3, size=n_items)
    out["sizes"] = sizes
    return out


CATEGORY_FLOOR = 0.015  # every category's weight in a taste's category mix before normalising


def taste_match(color: np.ndarray, brand: np.ndarray, q: np.ndarray) -> np.ndarray:
    """How well each item suits each taste, before the generator's hidden brand affinity:

        match(t, i) = 0.9 [colour_i in colours_t] + 0.9 [brand_i in brands_t] - 2.4 |q_i - price_level_t|

    with q_i the item's price position in its category's range, in [0, 1].

    Returns:
        (len(TASTES), n_items) array.
    """
    out = np.empty((len(TASTES), len(q)))
    for t, taste in enumerate(TASTES):
        out[t] = 0.9 * np.isin(color, taste.colors) + 0.9 * np.isin(brand, taste.brands) - 2.4 * np.abs(q - taste.price_level)
    return out


def taste_category_mix() -> np.ndarray:
    """(len(TASTES), len(CATEGORIES)) each taste's category weights, each floored at ``CATEGORY_FLOOR``
    and normalised to sum to one (a user's own mix is a Dirichlet draw around it)."""
    base = np.full((len(TASTES), len(CATEGORIES)), CATEGORY_FLOOR)
    for t, taste in enumerate(TASTES):
        for name, w in taste.categories.items():
            base[t, CATEGORY_NAMES.index(name)] += w
    return base / base.sum(1, keepdims=True)


def _taste_item_scores(rng: np.random.Generator, items: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per taste and item: log choice weight (popularity + match) and match in 0..1, both (n_tastes, n_items)."""
    brands = sorted(set(items["brand"]))
    brand_idx = np.searchsorted(np.array(brands, dtype=object), items["brand"])
    # A little taste-specific brand affinity on top of the favourites, so brands separate tastes too.
    affinity = rng.normal(0.0, 0.35, size=(len(TASTES), len(brands)))
    match = taste_match(items["color"], items["brand"], items["q"]) + affinity[:, brand_idx]
    log_weight = np.log(items["pop"])[None, :] + match
    return log_weight, 1.0 / (1.0 + np.exp(-(match - match.mean())))


def _block_cdf(weight: np.ndarray, cat: np.ndarray, n_cat: int) -> np.ndarray:
    """Flattened, strictly searchable cumulative weights: taste t, category c, item i -> t*C + c + cdf.

    With items grouped by category, ``searchsorted(cdf, t*C + c + u, side="right")`` then draws an item
    of category c from taste t's distribution for every row at once.
    """
    n_t, n = weight.shape
    out = np.empty((n_t, n))
    bounds = np.flatnonzero(np.diff(np.concatenate([[-1], cat, [n_cat]])))
    for t in range(n_t):
        for a, b in zip(bounds[:-1], bounds[1:]):
            cs = np.cumsum(weight[t, a:b])
            cs /= cs[-1]
            cs[-1] = 1.0
            out[t, a:b] = cs + cat[a]
        out[t] += t * n_cat
    return out.ravel()


def _make_users(rng: np.random.Generator, n_users: int) -> dict[str, np.ndarray]:
    """Latent taste, personal category mix, activity and the users.csv attributes."""
    shares = np.array([t.share for t in TASTES])
    taste = rng.choice(len(TASTES), size=n_users, p=shares / shares.sum())
    age = np.clip(np.round(rng.normal(np.array([t.age for t in TASTES])[taste], 9.0)), 18, 80).astype(int)
    region_w = np.array([t.regions for t in TASTES], dtype=float)
    region_cdf = np.cumsum(region_w / region_w.sum(1, keepdims=True), axis=1)[taste]
    region = np.minimum((region_cdf < rng.random(n_users)[:, None]).sum(1), len(REGIONS) - 1)
    club = rng.random(n_users) < np.array([t.club for t in TASTES])[taste]
    # Personal category mix: a Dirichlet draw around the taste's mix (gamma draws, normalised).
    mix = rng.gamma(12.0 * taste_category_mix()[taste])
    mix = np.maximum(mix, 1e-12)
    mix /= mix.sum(1, keepdims=True)
    return {
        "taste": taste, "age": age, "region": np.array(REGIONS, dtype=object)[region],
        "club": np.where(club, "yes", "no").astype(object), "mix_cdf": np.cumsum(mix, axis=1),
        "activity": rng.lognormal(0.0, 0.6, size=n_users),
    }


def _make_picks(rng: np.random.Generator, users: dict[str, np.ndarray], n_days: int) -> dict[str, np.ndarray]:
    """Browsing slots ("picks") in time order per user: sessions on distinct days, picks minutes apart."""
    n_users = len(users["taste"])
    act = users["activity"]
    n_sess = np.minimum(1 + rng.poisson(2.3 * act), min(n_days, 20))
    # Distinct session days per user: the first n_sess of a random permutation of the days, sorted.
    max_s = int(n_sess.max())
    order = np.argsort(rng.random((n_users, n_days)), axis=1)[:, :max_s]
    order = np.where(np.arange(max_s)[None, :] < n_sess[:, None], order, n_days + 1)
    days = np.sort(order, axis=1)
    valid = days <= n_days
    s_user = np.nonzero(valid)[0]
    s_day = days[valid]
    # Sessions start between 07:00 and 21:59, most often at lunch or in the evening.
    hour_w = np.array([1, 2, 2, 2, 2, 4, 3, 2, 2, 2, 3, 5, 6, 6, 4], dtype=float)
    hour = 7 + rng.choice(len(hour_w), size=len(s_user), p=hour_w / hour_w.sum())
    s_start = s_day * 86400 + hour * 3600 + rng.integers(0, 3600, size=len(s_user))
    n_picks = np.minimum(1 + rng.poisson(2.3 * np.sqrt(act[s_user])), 12)
    # Every user gets at least three picks (hence three events): the user's earliest visit takes the rest.
    total = np.bincount(s_user, weights=n_picks, minlength=n_users).astype(int)
    first_sess = np.searchsorted(s_user, np.arange(n_users))
    n_picks[first_sess] += np.maximum(3 - total, 0)

    p_sess = np.repeat(np.arange(len(s_user)), n_picks)
    first = np.ones(len(p_sess), dtype=bool)
    first[1:] = p_sess[1:] != p_sess[:-1]
    # Picks are 4+ minutes apart so that one pick's view -> purchase funnel ends before the next begins.
    gap = np.where(first, 0, 240 + rng.exponential(150.0, size=len(p_sess)).astype(np.int64))
    cum = np.cumsum(gap)
    sess_first = np.flatnonzero(first)
    p_time = s_start[p_sess] + cum - cum[sess_first][p_sess]
    # A late, long session is moved earlier so that it ends on its own day (funnel steps take < 240 s):
    # sessions then never overlap and no event falls after the last day.
    s_end = np.zeros(len(s_user), dtype=np.int64)
    np.maximum.at(s_end, p_sess, p_time + 240)
    overflow = np.maximum(s_end - (s_day + 1) * 86400 + 1, 0)
    p_time = p_time - overflow[p_sess]
    p_user = s_user[p_sess]
    user_first = np.searchsorted(p_user, np.arange(n_users))
    return {"user": p_user, "time": p_time, "first": first, "rank": np.arange(len(p_user)) - user_first[p_user]}


def _simulate(rng: np.random.Generator, items: dict, users: dict, picks: dict) -> dict[str, np.ndarray]:
    """Choose a category and an item per pick, step by step over all users at once, and the funnel outcome."""
    n_cat, n_items = len(CATEGORIES), len(items["cat"])
    log_w, match = _taste_item_scores(rng, items)
    weight = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    weight[:, items["new"]] *= 3.0  # a novelty boost, so that new arrivals do collect a few interactions
    cdf_all = _block_cdf(weight, items["cat"], n_cat)
    cdf_old = _block_cdf(np.where(items["new"][None, :], 0.0, weight), items["cat"], n_cat)
    comp = np.full((n_cat, n_cat), 1e-9)
    for src, dst in COMPLEMENTS.items():
        for name, w in dst.items():
            comp[CATEGORY_NAMES.index(src), CATEGORY_NAMES.index(name)] += w
    comp_cdf = np.cumsum(comp / comp.sum(1, keepdims=True), axis=1)
    created_sec = items["created_day"] * 86400

    n = len(picks["user"])
    cat = np.zeros(n, dtype=np.int64)
    item = np.zeros(n, dtype=np.int64)
    click = np.zeros(n, dtype=bool)
    cart = np.zeros(n, dtype=bool)
    buy = np.zeros(n, dtype=bool)
    by_rank = np.argsort(picks["rank"], kind="stable")
    edges = np.searchsorted(picks["rank"][by_rank], np.arange(picks["rank"].max() + 2))
    taste = users["taste"]
    # The chain is sequential per user but independent across users: step through ranks, all users at once.
    for r in range(len(edges) - 1):
        idx = by_rank[edges[r]:edges[r + 1]]
        u = picks["user"][idx]
        rnd = rng.random((len(idx), 9))
        c = np.minimum((users["mix_cdf"][u] < rnd[:, 0:1]).sum(1), n_cat - 1)
        revisit = np.zeros(len(idx), dtype=bool)
        if r > 0:
            prev = idx - 1
            stay = ~picks["first"][idx] & (rnd[:, 1] < _P_STAY)
            c = np.where(stay, cat[prev], c)
            comp_c = np.minimum((comp_cdf[cat[prev]] < rnd[:, 2:3]).sum(1), n_cat - 1)
            c = np.where(buy[prev] & (rnd[:, 3] < _P_COMPLEMENT), comp_c, c)
            revisit = cart[prev] & ~buy[prev] & (rnd[:, 4] < _P_REVISIT)
            c = np.where(revisit, cat[prev], c)
        t = taste[u]
        base = (t * n_cat + c).astype(float)
        it = np.searchsorted(cdf_all, base + np.minimum(rnd[:, 5], 1 - 1e-9), side="right") - t * n_items
        if r > 0:
            it = np.where(revisit, item[idx - 1], it)
        # Items not yet on sale are redrawn among the older items of the same category.
        early = created_sec[it] > picks["time"][idx]
        if early.any():
            redraw = np.searchsorted(cdf_old, base[early] + np.minimum(rnd[early, 6], 1 - 1e-9), side="right")
            it[early] = redraw - t[early] * n_items
        m = match[t, it]
        cl = rnd[:, 7] < 0.3 + 0.3 * m
        ca = cl & (rnd[:, 8] < 0.28 + 0.25 * m)
        cat[idx], item[idx], click[idx], cart[idx] = c, it, cl, ca
        buy[idx] = ca & (rng.random(len(idx)) < 0.45 + 0.25 * m)
    return {"cat": cat, "item": item, "click": click, "cart": cart, "buy": buy}


def _events(rng: np.random.Generator, picks: dict, chosen: dict) -> dict[str, np.ndarray]:
    """Expand picks into view/click/cart/purchase rows ordered by time."""
    n = len(picks["user"])
    offsets = [np.zeros(n, dtype=np.int64), rng.integers(5, 40, size=n), rng.integers(40, 120, size=n),
               rng.integers(120, 230, size=n)]
    masks = [np.ones(n, dtype=bool), chosen["click"], chosen["cart"], chosen["buy"]]
    user = np.concatenate([picks["user"][m] for m in masks])
    item = np.concatenate([chosen["item"][m] for m in masks])
    sec = np.concatenate([(picks["time"] + off)[m] for off, m in zip(offsets, masks)])
    kind = np.concatenate([np.full(int(m.sum()), k) for k, m in enumerate(masks)])
    order = np.lexsort((kind, user, sec))  # by time, then user, then funnel step
    return {"user": user[order], "item": item[order], "sec": sec[order], "kind": kind[order]}


def _readme(seed: int, n_items: int, n_users: int, n_days: int, n_events: int, fmt: str = "csv", shared: bool = False) -> str:
    picture = ("`images/shared/<shape>-<variant>-<colour>.png`, one drawing shared by the items of a category, "
               "shape and colour" if shared else "`images/<item_id>.png`, drawn by the generator")
    tastes = ", ".join(TASTE_NAMES)
    cats = ", ".join(CATEGORY_NAMES)
    return f"""# Homepage Studio demo store (synthetic)

This data directory is **synthetic**: it was generated by Homepage Studio
(`engine.data.demo_store.generate_demo`, seed {seed}) and describes no real shop, product or person.
The same seed always gives the same files.

- `items.{fmt}`: {n_items:,} products in {len(CATEGORIES)} categories ({cats}), with title, category, brand,
  price, color, description, image ({picture}) and created_at.
  About {NEW_SHARE:.0%} are new arrivals added during the last {NEW_ARRIVAL_DAYS} days, with no interaction before
  their created_at.
- `users.{fmt}`: {n_users:,} users with their latent taste ({tastes}) and age, region and club_member,
  which correlate mildly with the taste.
- `interactions.{fmt}`: {n_events:,} events (view, click, cart, purchase) over {n_days} days from {START.astype('datetime64[D]')},
  in sessions. A purchase makes a complement category likely next (phone -> phone accessories or headphones,
  laptop -> bags or headphones, dress -> sneakers or bags, ...); items within a category follow a Zipf-like
  popularity mixed with how well they match the user's taste.
"""


def generate_demo(out_dir: str | Path, seed: int = 42, n_items: int = 3000, n_users: int = 5000,
                  n_days: int = 90, fmt: str | None = None, shared_pictures: bool | None = None,
                  log=None) -> Path:
    """Generate the demo store and write it as a data directory with product pictures.

    Args:
        out_dir: the data directory to write (replaced atomically, file by file).
        seed: random seed; the same seed gives byte-identical files.
        n_items: number of products (at least 3 per category).
        n_users: number of users.
        n_days: length of the history in days, starting 2024-01-01.
        fmt: ``csv`` or ``parquet``; None: Parquet above :data:`PARQUET_ABOVE_USERS` users.
        shared_pictures: one picture per (category, colour, shape variant) instead of one per item;
            None: shared above :data:`SHARED_PICTURES_ABOVE_ITEMS` items.
        log: called with a line per step (None: quiet).

    Returns:
        The output directory.

    Raises:
        ValueError: when the sizes are too small to build a store.
    """
    if n_items < 3 * len(CATEGORIES):
        raise ValueError(f"n_items must be at least {3 * len(CATEGORIES)}, got {n_items}")
    if n_users < 1 or n_days < 2:
        raise ValueError(f"need n_users >= 1 and n_days >= 2, got {n_users} and {n_days}")
    fmt = fmt or ("parquet" if n_users > PARQUET_ABOVE_USERS else "csv")
    shared = n_items > SHARED_PICTURES_ABOVE_ITEMS if shared_pictures is None else shared_pictures
    say = log or (lambda _: None)
    rng = np.random.default_rng(seed)
    items = _make_items(rng, n_items, n_days)
    users = _make_users(rng, n_users)
    picks = _make_picks(rng, users, n_days)
    say(f"demo: {n_users:,} users, {len(picks['user']):,} browsing slots; choosing items")
    chosen = _simulate(rng, items, users, picks)
    events = _events(rng, picks, chosen)
    del picks, chosen
    say(f"demo: {len(events['user']):,} events; writing {fmt}")

    # Item ids are a random permutation, so that ids do not reveal the category blocks.
    number = rng.permutation(n_items) + 1
    width = max(5, len(str(n_items)))
    item_ids = np.array([f"P{k:0{width}d}" for k in number], dtype=object)
    user_ids = np.array([f"U{k:0{max(5, len(str(n_users)))}d}" for k in range(1, n_users + 1)], dtype=object)
    if shared:
        images_rel = np.array([f"images/shared/{t}-{v}-{c.lower().replace(' ', '-')}.png"
                               for t, v, c in zip(items["template"], items["variant"], items["color"])], dtype=object)
    else:
        images_rel = np.array([f"images/{i}.png" for i in item_ids], dtype=object)
    created = (START.astype("datetime64[D]") + items["created_day"].astype("timedelta64[D]")).astype(str)

    item_frame = pd.DataFrame({
        ITEM_COL: item_ids, TITLE_COL: items["title"], "category": items["category"], "brand": items["brand"],
        "price": items["price"], "color": items["color"], "description": items["description"],
        "image": images_rel, "created_at": created,
    }).iloc[np.argsort(number)].reset_index(drop=True)
    moments = START + events["sec"].astype("timedelta64[s]")
    # CSV holds ISO text; Parquet keeps the timestamps typed (no 27-million-string detour).
    stamps = np.datetime_as_string(moments, unit="s") if fmt == "csv" else moments.astype("datetime64[ns]")
    inter_frame = pd.DataFrame({
        USER_COL: user_ids[events["user"]], ITEM_COL: item_ids[events["item"]], TIME_COL: stamps,
        EVENT_COL: np.array(EVENTS, dtype=object)[events["kind"]],
    })
    user_frame = pd.DataFrame({
        USER_COL: user_ids, "taste": np.array(TASTE_NAMES, dtype=object)[users["taste"]], "age": users["age"],
        "region": users["region"], "club_member": users["club"],
    })

    painter = ProductPainter()
    images: dict[str, bytes] = {}
    for k in np.argsort(number):
        if shared:  # one plain picture per (template, variant, colour): no per-item accent
            if images_rel[k] not in images:
                images[images_rel[k]] = painter.png(items["template"][k], COLORS[items["color"][k]], int(items["variant"][k]))
            continue
        accent = _ACCENT_COLORS[items["accent"][k]]
        if accent == items["color"][k]:  # an accent in the product's own colour would be invisible
            accent = _ACCENT_COLORS[(items["accent"][k] + 1) % len(_ACCENT_COLORS)]
        images[images_rel[k]] = painter.png(items["template"][k], COLORS[items["color"][k]], int(items["variant"][k]),
                                            COLORS[accent], int(items["accent_kind"][k]))
    readme = _readme(seed, n_items, n_users, n_days, len(inter_frame), fmt, shared)
    say(f"demo: {len(images):,} pictures drawn; writing and validating {out_dir}")
    return write_dataset(out_dir, item_frame, inter_frame, user_frame, images=images, fmt=fmt,
                         extra_files={"README.md": readme})


if __name__ == "__main__":  # a quick timing run: python -m engine.data.demo_store OUT_DIR
    import sys

    t0 = time.perf_counter()
    generate_demo(sys.argv[1] if len(sys.argv) > 1 else "data/demo")
    print(f"demo store written in {time.perf_counter() - t0:.1f} s")

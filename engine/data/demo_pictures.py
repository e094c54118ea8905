"""Product pictures for the demo store: one recognisable Pillow drawing per category, filled in the item's colour."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Point = tuple[float, float]

SIZE = 200  # every picture is SIZE x SIZE pixels
BACKGROUND: RGB = (245, 243, 239)  # light warm grey, like a studio product shot
SHADOW: RGB = (226, 223, 217)
_SCALE = 2  # the cached base is drawn at 2x and halved, which smooths its edges for free

# Fixed non-product colours used by several templates.
_DARK: RGB = (30, 32, 38)
_METAL: RGB = (196, 198, 204)
_GOLD: RGB = (206, 170, 92)
_CREAM: RGB = (248, 244, 230)
_LEAF_DARK: RGB = (44, 120, 60)
_LEAF_LIGHT: RGB = (92, 164, 84)


def shade(color: RGB, factor: float) -> RGB:
    """Darken (factor < 1) or lighten (factor > 1, towards white) a colour."""
    if factor <= 1:
        return tuple(int(c * factor) for c in color)  # type: ignore[return-value]
    t = factor - 1
    return tuple(int(c + (255 - c) * t) for c in color)  # type: ignore[return-value]


def _edge(color: RGB) -> RGB:
    """Outline colour: a darker tone, so that white products still stand out on the light background."""
    return shade(color, 0.62) if sum(color) > 120 else shade(color, 1.35)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


class _Pen:
    """ImageDraw wrapper taking coordinates in the 200-unit picture space, whatever the canvas scale."""

    def __init__(self, image: Image.Image, scale: int) -> None:
        self.draw = ImageDraw.Draw(image)
        self.s = scale

    def _p(self, pts: Sequence[Point]) -> list[tuple[float, float]]:
        return [(x * self.s, y * self.s) for x, y in pts]

    def _b(self, box: Sequence[float]) -> list[float]:
        return [v * self.s for v in box]

    def _w(self, width: float) -> int:
        return max(1, round(width * self.s))

    def poly(self, pts: Sequence[Point], fill: RGB | None, outline: RGB | None = None, width: float = 1.5) -> None:
        self.draw.polygon(self._p(pts), fill=fill, outline=outline, width=self._w(width) if outline else 0)

    def ellipse(self, box: Sequence[float], fill: RGB | None, outline: RGB | None = None, width: float = 1.5) -> None:
        self.draw.ellipse(self._b(box), fill=fill, outline=outline, width=self._w(width) if outline else 0)

    def rect(
        self, box: Sequence[float], fill: RGB | None, radius: float = 0, outline: RGB | None = None, width: float = 1.5
    ) -> None:
        self.draw.rounded_rectangle(
            self._b(box), radius=radius * self.s, fill=fill, outline=outline, width=self._w(width) if outline else 0
        )

    def line(self, pts: Sequence[Point], fill: RGB, width: float = 2, joint: bool = True) -> None:
        self.draw.line(self._p(pts), fill=fill, width=self._w(width), joint="curve" if joint else None)

    def arc(self, box: Sequence[float], start: float, end: float, fill: RGB, width: float) -> None:
        self.draw.arc(self._b(box), start, end, fill=fill, width=self._w(width))

    def chord(self, box: Sequence[float], start: float, end: float, fill: RGB, outline: RGB | None = None) -> None:
        self.draw.chord(self._b(box), start, end, fill=fill, outline=outline, width=self._w(1.5) if outline else 0)

    def dot(self, x: float, y: float, r: float, fill: RGB, outline: RGB | None = None) -> None:
        self.ellipse((x - r, y - r, x + r, y + r), fill, outline, 1)


def _leaf(base: Point, angle_deg: float, length: float, width: float, n: int = 10) -> list[Point]:
    """A lens-shaped leaf starting at ``base`` and pointing along ``angle_deg`` (0 = right, -90 = up)."""
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    upper, lower = [], []
    for k in range(n + 1):
        t = k / n
        along, across = t * length, width / 2 * math.sin(math.pi * t) ** 0.8
        for sign, out in ((1, upper), (-1, lower)):
            x, y = along, sign * across
            out.append((base[0] + x * ca - y * sa, base[1] + x * sa + y * ca))
    return upper + lower[::-1]


def _shadow(pen: _Pen, x0: float, x1: float, y: float, h: float = 7) -> None:
    pen.ellipse((x0, y - h, x1, y + h), SHADOW)


# ----------------------------------------------------------------------------------------------
# One base drawing per template. Each takes (pen, colour, variant) and draws in 200-unit space.


def _sneaker(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    sole = (236, 234, 228) if sum(c) > 600 else (250, 250, 247)
    _shadow(pen, 18, 186, 150, 6)
    if variant == 1:  # high-top: the collar climbs above the ankle
        upper = [(24, 134), (22, 92), (24, 58), (34, 48), (58, 50), (66, 58), (70, 44), (86, 42), (90, 76),
                 (112, 92), (138, 104), (160, 112), (174, 120), (180, 132)]
        laces = [(74 + 4 * k, 60 + 11 * k) for k in range(4)]
    else:
        upper = [(24, 134), (22, 104), (26, 86), (36, 78), (52, 84), (66, 84), (72, 68), (88, 66), (92, 80),
                 (112, 92), (138, 104), (160, 112), (174, 120), (180, 132)]
        laces = [(96 + 10 * k, 85 + 5 * k) for k in range(4)]
    pen.poly(upper, c, e, 1.5)
    pen.poly([(150, 112), (172, 118), (180, 132), (148, 132)], shade(c, 0.9), e, 1)  # toe cap
    for x, y in laces:
        pen.line([(x - 5, y - 4), (x + 5, y + 4)], _edge(c), 2.2)
        pen.line([(x - 5, y + 4), (x + 5, y - 4)], shade(c, 1.5) if sum(c) < 600 else _METAL, 1.6)
    pen.poly([(20, 132), (182, 132), (186, 140), (182, 148), (24, 148), (18, 140)], sole, (150, 148, 142), 1.2)
    pen.line([(24, 141), (182, 141)], (190, 188, 182), 1)


def _tshirt(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    body = [(78, 34), (52, 44), (20, 76), (38, 100), (56, 88), (56, 172), (144, 172), (144, 88), (162, 100),
            (180, 76), (148, 44), (122, 34)]
    pen.poly(body, c, e, 1.5)
    pen.line([(56, 88), (56, 120)], e, 1)
    pen.line([(144, 88), (144, 120)], e, 1)
    if variant == 1:  # v-neck
        pen.poly([(80, 34), (120, 34), (100, 64)], shade(c, 0.8), e, 1.5)
    else:
        pen.chord((80, 22, 120, 52), 0, 180, shade(c, 0.8), e)
        pen.arc((78, 20, 122, 55), 10, 170, e, 2)


def _dress(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    pen.line([(84, 22), (82, 48)], e, 3)
    pen.line([(116, 22), (118, 48)], e, 3)
    bodice = [(78, 48), (92, 46), (100, 56), (108, 46), (122, 48), (118, 90), (82, 90)]
    skirt = [(82, 90), (118, 90), (150, 168), (125, 176), (100, 178), (75, 176), (50, 168)]
    if variant == 1:  # short sleeves
        pen.poly([(80, 48), (62, 60), (68, 76), (82, 68)], c, e, 1.5)
        pen.poly([(120, 48), (138, 60), (132, 76), (118, 68)], c, e, 1.5)
    pen.poly(skirt, c, e, 1.5)
    pen.poly(bodice, c, e, 1.5)
    for x0, x1 in ((92, 80), (108, 120)):
        pen.line([(x0, 96), (x1, 170)], shade(c, 0.85), 1.2)  # pleats


def _trousers(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    legs = [(60, 40), (140, 40), (146, 178), (110, 178), (100, 84), (90, 178), (54, 178)]
    if variant == 1:  # joggers: tapered legs with cuffs
        legs = [(60, 40), (140, 40), (142, 168), (112, 168), (100, 84), (88, 168), (58, 168)]
    pen.poly(legs, c, e, 1.5)
    pen.rect((58, 28, 142, 42), shade(c, 0.88), 2, e, 1.2)
    for x in (72, 100, 128):
        pen.rect((x - 2, 27, x + 2, 44), shade(c, 0.75))  # belt loops
    pen.line([(100, 42), (100, 74)], e, 1.2)  # fly
    pen.arc((52, 28, 84, 64), 0, 90, e, 1.2)  # pockets
    pen.arc((116, 28, 148, 64), 90, 180, e, 1.2)
    if variant == 1:
        pen.rect((56, 166, 90, 178), shade(c, 0.85), 3, e, 1)
        pen.rect((110, 166, 144, 178), shade(c, 0.85), 3, e, 1)


def _bag(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 34, 166, 176, 6)
    if variant == 1:  # backpack, front view
        pen.rect((84, 20, 116, 44), None, 10, shade(c, 0.8), 5)  # top handle loop
        pen.rect((50, 36, 150, 176), c, 28, e, 1.5)
        pen.rect((64, 108, 136, 166), shade(c, 0.9), 12, e, 1.2)
        pen.line([(70, 112), (130, 112)], _edge(c), 1.5)
        pen.line([(64, 64), (136, 64)], e, 1.2)
        return
    pen.arc((62, 30, 138, 110), 180, 360, shade(c, 0.8), 7)  # handle
    pen.poly([(44, 74), (156, 74), (166, 172), (34, 172)], c, e, 1.5)
    pen.poly([(44, 74), (156, 74), (152, 108), (48, 108)], shade(c, 0.9), e, 1.2)  # flap
    pen.rect((94, 100, 106, 114), _GOLD, 2)


def _watch(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    # A silver or white strap gets a dark case, so that the case never blends into the strap.
    metal = _DARK if sum(abs(a - b) for a, b in zip(c, _METAL)) < 90 or sum(c) > 600 else _METAL
    pen.rect((80, 6, 120, 194), c, 8, e, 1.5)  # strap
    for y in (150, 162, 174):
        pen.dot(100, y, 2, _edge(c))
    if variant == 1:  # smartwatch: a square case showing a watch face
        pen.rect((60, 52, 140, 148), c, 20, e, 1.5)
        pen.rect((68, 60, 132, 140), _DARK, 14)
        pen.arc((76, 68, 124, 116), 0, 360, (230, 60, 80), 4)
        pen.arc((84, 76, 116, 108), 0, 300, (120, 220, 90), 4)
        pen.rect((80, 118, 120, 130), shade(c, 1.4), 3)
        pen.rect((140, 84, 146, 104), metal, 2)
        return
    pen.rect((142, 92, 150, 108), metal, 2)  # crown
    pen.ellipse((56, 56, 144, 144), metal, _edge(metal), 1)
    pen.ellipse((64, 64, 136, 136), c, e, 1)  # coloured dial
    ticks = shade(c, 1.7) if sum(c) < 500 else _DARK
    for k in range(12):
        a = math.radians(k * 30)
        r0, r1 = (26, 33) if k % 3 == 0 else (29, 33)
        pen.line([(100 + r0 * math.sin(a), 100 - r0 * math.cos(a)), (100 + r1 * math.sin(a), 100 - r1 * math.cos(a))],
                 ticks, 2.2 if k % 3 == 0 else 1.2, joint=False)
    pen.line([(100, 100), (100, 74)], ticks, 3, joint=False)
    pen.line([(100, 100), (118, 110)], ticks, 3, joint=False)
    pen.dot(100, 100, 3, ticks)


def _phone(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 40, 172, 186, 5)
    # A front view behind, showing the screen, and a back view in front, showing the cameras.
    pen.rect((96, 26, 166, 184), c, 16, e, 1.5)
    top, mid, low = _mix(c, (20, 30, 70), 0.75), _mix(c, (60, 40, 110), 0.55), _mix(c, (250, 180, 120), 0.45)
    pen.rect((100, 30, 162, 180), top, 13)
    pen.rect((100, 80, 162, 180), mid, 13)
    pen.rect((100, 80, 162, 90), mid)
    pen.rect((100, 130, 162, 180), low, 13)
    pen.rect((100, 130, 162, 140), low)
    pen.rect((138, 36, 158, 42), _DARK, 3)
    pen.rect((34, 16, 110, 176), c, 16, e, 1.5)
    module = shade(c, 0.86) if sum(c) > 150 else shade(c, 1.4)
    pen.rect((42, 24, 82, 66), module, 10, _edge(module), 1)
    lenses = [(53, 35), (71, 35), (53, 55)] if variant == 0 else [(53, 35), (53, 55)]
    for x, y in lenses:
        pen.dot(x, y, 8, _DARK, (90, 92, 100))
        pen.dot(x - 2, y - 2, 2, (120, 130, 150))
    pen.dot(71, 55, 3, (250, 236, 180))  # flash
    pen.rect((110, 50, 113, 74), e, 1)  # side button


def _accessory(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 40, 170, 186, 5)
    if variant == 1:  # wall charger with a cable and a USB-C plug
        pen.line([(90, 128), (92, 160), (120, 172), (150, 160), (160, 130), (150, 110)], c, 6)
        pen.rect((144, 84, 158, 114), c, 3, e, 1.2)
        pen.rect((148, 72, 154, 86), _METAL, 1)
        pen.poly([(50, 56), (96, 56), (112, 44), (66, 44)], shade(c, 1.15) if sum(c) < 600 else (252, 252, 250), e, 1.2)
        pen.poly([(96, 56), (112, 44), (112, 116), (96, 128)], shade(c, 0.8), e, 1.2)
        pen.rect((50, 56, 96, 128), c, 4, e, 1.5)
        pen.rect((64, 20, 70, 50), _METAL, 1)  # prongs
        pen.rect((84, 20, 90, 50), _METAL, 1)
        pen.rect((62, 96, 84, 104), _DARK, 3)  # port
        return
    # Phone case seen from the back: the camera cut-out shows the background through it.
    pen.rect((60, 16, 140, 180), shade(c, 0.8), 20)  # side wall, peeking right and below
    pen.rect((54, 12, 134, 174), c, 20, e, 1.5)
    pen.rect((64, 22, 104, 64), BACKGROUND, 11, e, 1.5)
    pen.rect((58, 60, 61, 84), shade(c, 0.8), 1)
    pen.line([(66, 160), (122, 160)], shade(c, 0.9), 1)


def _headphones(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    pen.arc((36, 22, 164, 150), 180, 360, e, 17)
    pen.arc((37, 23, 163, 149), 182, 358, c, 14)
    pen.arc((44, 30, 156, 142), 205, 335, shade(c, 0.8), 4)  # padding
    pen.line([(42, 86), (42, 104)], _METAL, 5)
    pen.line([(158, 86), (158, 104)], _METAL, 5)
    cushion = (52, 52, 58) if sum(c) > 150 else (90, 92, 100)
    if variant == 1:  # on-ear: round cups
        for x0 in (22, 126):
            pen.ellipse((x0, 100, x0 + 52, 160), c, e, 1.5)
        pen.rect((68, 110, 78, 150), cushion, 4)
        pen.rect((122, 110, 132, 150), cushion, 4)
        return
    for x0 in (24, 130):
        pen.rect((x0, 98, x0 + 46, 176), c, 20, e, 1.5)
    pen.rect((64, 106, 76, 168), cushion, 5)
    pen.rect((124, 106, 136, 168), cushion, 5)


def _laptop(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 14, 186, 172, 5)
    pen.rect((38, 24, 162, 124), c, 8, e, 1.5)  # lid
    pen.rect((45, 31, 155, 117), _mix(c, (18, 24, 60), 0.8), 2)
    pen.poly([(45, 74), (155, 56), (155, 117), (45, 117)], _mix(c, (40, 90, 160), 0.6))
    pen.poly([(45, 100), (155, 84), (155, 117), (45, 117)], _mix(c, (230, 150, 120), 0.55))
    pen.poly([(38, 124), (162, 124), (190, 168), (10, 168)], c, e, 1.5)  # keyboard deck
    keys = shade(c, 0.7) if sum(c) > 150 else shade(c, 1.6)
    for row in range(4):
        y0 = 128 + row * 7.5
        x0, x1 = 50 - row * 4.5, 150 + row * 4.5
        n = 12
        w = (x1 - x0) / n
        for k in range(n):
            pen.rect((x0 + k * w + 0.8, y0, x0 + (k + 1) * w - 0.8, y0 + 5.2), keys, 1)
    pen.rect((84, 158, 116, 166), shade(c, 0.88), 2)  # touchpad


def _lamp(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 50, 150, 178, 5)
    if variant == 1:  # desk lamp: weighted base, two arm segments and a dome head
        pen.ellipse((56, 160, 136, 182), c, e, 1.5)
        pen.line([(96, 168), (70, 96), (130, 54)], _edge(c), 9)
        pen.line([(96, 168), (70, 96), (130, 54)], c, 6)
        pen.dot(70, 96, 6, shade(c, 0.8))
        pen.dot(96, 168, 5, shade(c, 0.8))
        head = [(120, 40), (160, 40), (178, 78), (172, 84), (110, 84), (104, 78)]
        pen.poly([(124, 80), (164, 80), (158, 92), (130, 92)], (255, 240, 180))  # glowing bulb
        pen.poly(head, c, e, 1.5)
        pen.rect((134, 30, 146, 42), shade(c, 0.8), 3)
        return
    pen.rect((96, 92, 104, 162), _GOLD, 2)
    pen.ellipse((62, 154, 138, 176), c, e, 1.5)
    pen.poly([(62, 28), (138, 28), (162, 96), (38, 96)], c, e, 1.5)
    pen.line([(64, 32), (136, 32)], shade(c, 0.85), 2)


def _mug(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 36, 160, 172, 6)
    x0, x1, top = (40, 136, 58) if variant == 0 else (30, 146, 78)
    hy0, hy1 = (top + 22, 150) if variant == 0 else (top + 14, 150)
    pen.ellipse((x1 - 22, hy0, x1 + 36, hy1), None, e, 15)
    pen.ellipse((x1 - 21, hy0 + 1, x1 + 35, hy1 - 1), None, c, 12)
    pen.rect((x0, top, x1, 170), c, 14, e, 1.5)
    pen.rect((x0, top, x1, top + 30), c)
    pen.line([(x0, top + 1), (x0, top + 30)], e, 1.5)
    pen.line([(x1, top + 1), (x1, top + 30)], e, 1.5)
    pen.ellipse((x0, top - 10, x1, top + 10), shade(c, 0.9), e, 1.5)
    pen.ellipse((x0 + 5, top - 6, x1 - 5, top + 7), (92, 58, 36))  # coffee
    for sx in ((x0 + x1) / 2 - 14, (x0 + x1) / 2 + 8):
        pen.line([(sx, top - 16), (sx - 5, top - 26), (sx + 2, top - 36), (sx - 3, top - 46)], (210, 208, 204), 2)


def _book(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 50, 172, 180, 5)
    pen.poly([(146, 28), (158, 36), (158, 180), (146, 176)], _CREAM, (200, 194, 176), 1)  # page block
    for y in range(44, 176, 6):
        pen.line([(148, y - 6), (156, y - 1)], (226, 220, 200), 1, joint=False)
    pen.rect((52, 22, 148, 178), c, 3, e, 1.5)
    pen.rect((52, 22, 64, 178), shade(c, 0.8), 2)  # spine side
    label = _CREAM if sum(c) < 560 else (60, 62, 70)
    if variant == 1:
        pen.rect((76, 50, 136, 92), label, 2)
        pen.line([(84, 64), (128, 64)], c, 3)
        pen.line([(90, 76), (122, 76)], c, 2)
    else:
        pen.line([(76, 48), (136, 48)], label, 5)
        pen.line([(76, 60), (120, 60)], label, 3)
        pen.line([(76, 160), (110, 160)], label, 2)


def _sunglasses(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    lens = (40, 42, 50)
    glare = (74, 80, 96)
    pen.rect((10, 68, 24, 78), c, 2, e, 1)  # hinges
    pen.rect((176, 68, 190, 78), c, 2, e, 1)
    pen.rect((88, 82, 112, 94), c, 3, e, 1)  # bridge
    for x0 in (18, 106):
        if variant == 1:  # round
            pen.ellipse((x0, 62, x0 + 76, 138), c, e, 1.5)
            pen.ellipse((x0 + 12, 74, x0 + 64, 126), lens)
            pen.chord((x0 + 12, 74, x0 + 64, 126), 200, 290, glare)
        else:  # wayfarer
            pen.poly([(x0, 64), (x0 + 76, 64), (x0 + 70, 132), (x0 + 8, 132)], c, e, 1.5)
            pen.poly([(x0 + 11, 76), (x0 + 65, 76), (x0 + 60, 120), (x0 + 16, 120)], lens)
            pen.poly([(x0 + 14, 78), (x0 + 34, 78), (x0 + 22, 118), (x0 + 17, 118)], glare)


def _hat(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 30, 180, 160, 5)
    if variant == 1:  # beanie with a folded cuff and a pompom
        pen.dot(100, 36, 16, shade(c, 0.85), e)
        pen.chord((42, 44, 158, 196), 180, 360, c, e)
        for x in range(56, 150, 12):
            pen.line([(x, 106), (x + (x - 100) * 0.15, 66)], shade(c, 0.9), 1.2)
        pen.rect((38, 112, 162, 150), shade(c, 0.9), 8, e, 1.5)
        for x in range(46, 158, 8):
            pen.line([(x, 116), (x, 146)], shade(c, 0.8), 1)
        return
    # Baseball cap, side view, peak to the right.
    pen.poly([(112, 128), (170, 128), (192, 140), (186, 150), (118, 146)], shade(c, 0.88), e, 1.5)  # brim
    pen.chord((24, 52, 150, 204), 180, 360, c, e)
    pen.line([(87, 52), (100, 128)], shade(c, 0.78), 1.5)
    pen.line([(87, 52), (60, 128)], shade(c, 0.78), 1.5)
    pen.dot(87, 53, 5, shade(c, 0.8))
    pen.line([(24, 128), (150, 128)], e, 2)
    for x in (70, 84):
        pen.dot(x - 20, 92, 2, shade(c, 0.75))


def _plant(pen: _Pen, c: RGB, variant: int) -> None:
    e = _edge(c)
    _shadow(pen, 54, 146, 182, 5)
    if variant == 1:  # upright sword leaves (snake plant)
        leaves = [((92, 110), -100, 92, 22), ((104, 110), -80, 96, 22), ((84, 112), -122, 70, 20),
                  ((116, 112), -58, 72, 20), ((98, 112), -92, 60, 18)]
    else:  # broad leaves
        leaves = [((100, 110), -150, 64, 34), ((100, 110), -30, 64, 34), ((100, 108), -118, 70, 34),
                  ((100, 108), -62, 70, 34), ((100, 108), -90, 62, 30)]
    for k, (base, angle, length, width) in enumerate(leaves):
        fill = _LEAF_DARK if k % 2 == 0 else _LEAF_LIGHT
        pts = _leaf(base, angle, length, width)
        pen.poly(pts, fill, (28, 80, 40), 1)
        tip = pts[len(pts) // 4]
        pen.line([base, tip], shade(fill, 0.82), 1)
    pen.poly([(58, 118), (142, 118), (130, 182), (70, 182)], c, e, 1.5)
    pen.rect((52, 104, 148, 122), shade(c, 0.93), 4, e, 1.5)


TEMPLATES: dict[str, Callable[[_Pen, RGB, int], None]] = {
    "sneaker": _sneaker,
    "tshirt": _tshirt,
    "dress": _dress,
    "trousers": _trousers,
    "bag": _bag,
    "watch": _watch,
    "phone": _phone,
    "accessory": _accessory,
    "headphones": _headphones,
    "laptop": _laptop,
    "lamp": _lamp,
    "mug": _mug,
    "book": _book,
    "sunglasses": _sunglasses,
    "hat": _hat,
    "plant": _plant,
}


# ----------------------------------------------------------------------------------------------
# Per-item accents: small marks drawn on a copy of the cached base, so no two cards look identical.
# Each entry lists the shapes an accent kind may take, in 200-unit space: ("dot", x, y, r),
# ("rect", x0, y0, x1, y1) or ("poly", points).

_ACCENTS: dict[str, list[list[tuple]]] = {
    "sneaker": [
        [("poly", [(62, 126), (70, 126), (100, 100), (92, 100)]), ("poly", [(74, 126), (82, 126), (110, 104), (102, 104)]),
         ("poly", [(86, 126), (94, 126), (120, 108), (112, 108)])],
        [("poly", [(40, 118), (80, 122), (130, 110), (150, 118), (110, 126), (60, 128)])],
        [("poly", [(22, 104), (30, 104), (30, 130), (23, 130)]), ("dot", 140, 124, 3)],
    ],
    "tshirt": [[("dot", 122, 70, 6)], [("rect", 57, 96, 143, 106)], [("rect", 86, 70, 114, 84)]],
    "dress": [[("rect", 82, 86, 118, 93)], [("dot", 100, 64, 4)], [("poly", [(58, 158), (142, 158), (146, 164), (54, 164)])]],
    "trousers": [[("rect", 56, 80, 60, 170)], [("rect", 96, 30, 104, 40)], [("poly", [(120, 60), (132, 60), (132, 70), (120, 70)])]],
    "bag": [[("dot", 100, 140, 6)], [("rect", 70, 150, 130, 156)], [("rect", 90, 132, 110, 150)]],
    "watch": [[("rect", 84, 180, 116, 186)], [("dot", 100, 82, 3)], [("rect", 84, 10, 116, 16)]],
    "phone": [[("dot", 72, 118, 6)], [("rect", 40, 150, 104, 153)], [("dot", 80, 28, 2)]],
    "accessory": [[("dot", 94, 118, 7)], [("rect", 70, 140, 118, 146)], [("rect", 56, 66, 92, 70)]],
    "headphones": [[("dot", 47, 136, 6), ("dot", 153, 136, 6)], [("rect", 92, 24, 108, 30)], [("dot", 40, 122, 3), ("dot", 146, 122, 3)]],
    "laptop": [[("dot", 100, 118, 2)], [("rect", 40, 120, 160, 123)], [("rect", 86, 146, 114, 149)]],
    "lamp": [[("rect", 62, 86, 138, 92)], [("dot", 100, 165, 4)], [("rect", 70, 60, 130, 64)]],
    "mug": [[("rect", 42, 112, 134, 120)], [("dot", 88, 124, 9)], [("poly", [(80, 104), (96, 104), (88, 120)])]],
    "book": [[("rect", 76, 120, 136, 126)], [("dot", 120, 140, 7)], [("rect", 66, 160, 146, 166)]],
    "sunglasses": [[("dot", 24, 70, 3), ("dot", 176, 70, 3)], [("rect", 94, 84, 106, 92)], [("dot", 100, 88, 3)]],
    "hat": [[("dot", 110, 100, 7)], [("rect", 40, 120, 140, 126)], [("dot", 62, 108, 5)]],
    "plant": [[("rect", 70, 140, 130, 146)], [("dot", 100, 152, 7)], [("rect", 54, 108, 146, 112)]],
}


# Shape variants whose body sits elsewhere than the default variant's get their own accents.
_VARIANT_ACCENTS: dict[tuple[str, int], list[list[tuple]]] = {
    ("lamp", 1): [[("dot", 96, 172, 4)], [("rect", 122, 60, 164, 64)], [("dot", 70, 96, 4)]],
    ("accessory", 1): [[("dot", 73, 80, 5)], [("rect", 56, 112, 90, 116)], [("rect", 56, 66, 92, 70)]],
}


def _accents(template: str, variant: int) -> list[list[tuple]]:
    return _VARIANT_ACCENTS.get((template, variant), _ACCENTS[template])


class ProductPainter:
    """Draws product pictures, caching one base per (template, colour, variant).

    A demo store has a few hundred distinct bases; every item is a copy of its base with a cheap
    accent mark on top, then PNG-encoded, which keeps 3,000 pictures within a couple of seconds.
    """

    def __init__(self) -> None:
        self._bases: dict[tuple[str, RGB, int], Image.Image] = {}

    def base(self, template: str, color: RGB, variant: int) -> Image.Image:
        """The shared drawing for one template, colour and shape variant (do not modify it)."""
        key = (template, color, variant)
        image = self._bases.get(key)
        if image is None:
            big = Image.new("RGB", (SIZE * _SCALE, SIZE * _SCALE), BACKGROUND)
            TEMPLATES[template](_Pen(big, _SCALE), color, variant)
            image = big.reduce(_SCALE)
            self._bases[key] = image
        return image

    def render(self, template: str, color: RGB, variant: int = 0, accent: RGB | None = None, kind: int = 0) -> Image.Image:
        """One item's picture.

        Args:
            template: a key of :data:`TEMPLATES`.
            color: the product colour (RGB).
            variant: the shape variant (0 or 1), e.g. a high-top sneaker or a backpack.
            accent: colour of the per-item accent mark, or None for none.
            kind: which accent mark of the template, modulo the number of kinds.

        Returns:
            A new SIZE x SIZE RGB image.
        """
        image = self.base(template, color, variant).copy()
        if accent is not None:
            pen = _Pen(image, 1)
            options = _accents(template, variant)
            for shape in options[kind % len(options)]:
                if shape[0] == "dot":
                    pen.dot(shape[1], shape[2], shape[3], accent)
                elif shape[0] == "rect":
                    pen.rect(shape[1:], accent, 1)
                else:
                    pen.poly(shape[1], accent)
        return image

    def png(self, template: str, color: RGB, variant: int = 0, accent: RGB | None = None, kind: int = 0) -> bytes:
        """:meth:`render` encoded as PNG bytes."""
        buffer = io.BytesIO()
        self.render(template, color, variant, accent, kind).save(buffer, format="PNG", compress_level=6)
        return buffer.getvalue()

#!/usr/bin/python3
"""ansi2png.py - draws a terminal screen captured with `tmux capture-pane -e -p`
(text with SGR colour codes) as a PNG, cell by cell, in DejaVu Sans Mono
with the xterm 256-colour palette.  Used by scripts/screenshot.

    ansi2png.py [--cols C] [--rows R] [--size PX] [--title TEXT] IN OUT

IN is the captured screen ("-" for stdin); OUT the PNG.  C x R is the
terminal size (default: the longest line and the number of lines).  Bold,
dim, italic (drawn upright), underline and reverse are drawn; colours
16-255 are the xterm cube and grey ramp, 0-15 a Tango-like palette; 24-bit
colours are drawn as given.  Wide characters (East Asian wide/full) take
two cells.  With --title the screen gets a window frame with that title.
Needs python3-pil and fonts-dejavu-core (scripts/setup installs both).
"""
import argparse
import re
import sys
import unicodedata

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu/"
DEFAULT_FG = (0xd3, 0xd7, 0xcf)
DEFAULT_BG = (0x1e, 0x1e, 0x1e)
BASE16 = [
    (0x2e, 0x34, 0x36), (0xcc, 0x00, 0x00), (0x4e, 0x9a, 0x06), (0xc4, 0xa0, 0x00),
    (0x34, 0x65, 0xa4), (0x75, 0x50, 0x7b), (0x06, 0x98, 0x9a), (0xd3, 0xd7, 0xcf),
    (0x55, 0x57, 0x53), (0xef, 0x29, 0x29), (0x8a, 0xe2, 0x34), (0xfc, 0xe9, 0x4f),
    (0x72, 0x9f, 0xcf), (0xad, 0x7f, 0xa8), (0x34, 0xe2, 0xe2), (0xee, 0xee, 0xec),
]


def palette(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    g = 8 + (n - 232) * 10
    return (g, g, g)


class Attr:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = None
        self.bg = None
        self.bold = self.dim = self.italic = self.underline = self.reverse = False

    def copy(self):
        a = Attr()
        a.__dict__.update(self.__dict__)
        return a

    def sgr(self, params):
        p = [int(x) if x else 0 for x in params.split(";")] if params else [0]
        i = 0
        while i < len(p):
            c = p[i]
            if c == 0:
                self.reset()
            elif c == 1:
                self.bold = True
            elif c == 2:
                self.dim = True
            elif c == 3:
                self.italic = True
            elif c in (4, 21):
                self.underline = True
            elif c == 7:
                self.reverse = True
            elif c == 22:
                self.bold = self.dim = False
            elif c == 23:
                self.italic = False
            elif c == 24:
                self.underline = False
            elif c == 27:
                self.reverse = False
            elif 30 <= c <= 37:
                self.fg = palette(c - 30)
            elif 90 <= c <= 97:
                self.fg = palette(c - 90 + 8)
            elif 40 <= c <= 47:
                self.bg = palette(c - 40)
            elif 100 <= c <= 107:
                self.bg = palette(c - 100 + 8)
            elif c == 39:
                self.fg = None
            elif c == 49:
                self.bg = None
            elif c in (38, 48) and i + 1 < len(p):
                if p[i + 1] == 5 and i + 2 < len(p):
                    col = palette(p[i + 2] & 255)
                    i += 2
                elif p[i + 1] == 2 and i + 4 < len(p):
                    col = tuple(v & 255 for v in p[i + 2:i + 5])
                    i += 4
                else:
                    col = None
                    i += 1
                if c == 38:
                    self.fg = col
                else:
                    self.bg = col
            i += 1

    def colours(self):
        fg = self.fg or DEFAULT_FG
        bg = self.bg or DEFAULT_BG
        if self.reverse:
            fg, bg = bg, fg
        if self.dim:
            fg = tuple((f + b) // 2 for f, b in zip(fg, bg))
        return fg, bg


CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b[()][0-9A-Za-z]|\x1b.")


def parse(text):
    """Returns rows of cells: (char, Attr, width); a wide char's second cell is None."""
    rows = []
    attr = Attr()
    for line in text.split("\n"):
        row = []
        pos = 0
        for m in CSI.finditer(line + "\x1b[X"):
            for ch in line[pos:m.start()]:
                if unicodedata.combining(ch) and row:
                    continue
                w = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
                row.append((ch, attr.copy(), w))
                if w == 2:
                    row.append(None)
            pos = m.end()
            if m.group(2) == "m":
                attr.sgr(m.group(1))
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def draw(rows, cols, nrows, size, title):
    regular = ImageFont.truetype(FONT_DIR + "DejaVuSansMono.ttf", size)
    bold = ImageFont.truetype(FONT_DIR + "DejaVuSansMono-Bold.ttf", size)
    cw = int(round(regular.getlength("M")))
    asc, desc = regular.getmetrics()
    ch_ = asc + desc + 1
    pad = cw
    top = 0
    if title:
        top = ch_ + 12
    img = Image.new("RGB", (cols * cw + 2 * pad, nrows * ch_ + 2 * pad + top), DEFAULT_BG)
    d = ImageDraw.Draw(img)
    if title:
        d.rectangle([0, 0, img.width, top - 1], fill=(0x3c, 0x3c, 0x3c))
        for k, col in enumerate([(0xff, 0x5f, 0x56), (0xff, 0xbd, 0x2e), (0x27, 0xc9, 0x3f)]):
            cx, cy = 14 + k * 20, top // 2
            d.ellipse([cx - 6, cy - 6, cx + 6, cy + 6], fill=col)
        tw = regular.getlength(title)
        d.text(((img.width - tw) / 2, (top - ch_) / 2 + 1), title, font=regular,
               fill=(0xcc, 0xcc, 0xcc))
    for y, row in enumerate(rows[:nrows]):
        for x, cell in enumerate(row[:cols]):
            if cell is None:
                continue
            ch, a, w = cell
            fg, bg = a.colours()
            x0, y0 = pad + x * cw, pad + top + y * ch_
            if bg != DEFAULT_BG:
                d.rectangle([x0, y0, x0 + w * cw - 1, y0 + ch_ - 1], fill=bg)
            if ch != " ":
                d.text((x0, y0), ch, font=bold if a.bold else regular, fill=fg)
            if a.underline:
                d.line([x0, y0 + asc + 1, x0 + w * cw - 1, y0 + asc + 1], fill=fg)
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cols", type=int)
    ap.add_argument("--rows", type=int)
    ap.add_argument("--size", type=int, default=15, help="font size in pixels")
    ap.add_argument("--title")
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args()
    text = (sys.stdin if args.input == "-" else open(args.input, encoding="utf-8",
                                                      errors="replace")).read()
    rows = parse(text.rstrip("\n"))
    cols = args.cols or max((len(r) for r in rows), default=1)
    nrows = args.rows or len(rows)
    draw(rows, cols, nrows, args.size, args.title).save(args.output)


if __name__ == "__main__":
    main()

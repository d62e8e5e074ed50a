// WCAG 2.1 colour contrast, to flag a site colour that white text cannot
// be read on. The widget (chatsvc/widget/widget.js) makes the same check
// in the visitor's browser and switches to dark text; this copy lives here
// because the staff app and the widget share no code.

export const INK = '#111827';

function luminance(hex) {
  let h = hex.replace('#', '');
  if (h.length === 3 || h.length === 4) h = [...h.slice(0, 3)].map((c) => c + c).join('');
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(h.substr(i, 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

// contrastRatio is (L1 + 0.05) / (L2 + 0.05) of two #rgb / #rrggbb colours.
export function contrastRatio(a, b) {
  const la = luminance(a);
  const lb = luminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/** One bar of a horizontal bar chart. */
export interface Bar {
  label: string;
  value: number;
}

/**
 * Draws bars scaled to the largest value, with eighth-block precision, as lines for a terminal. Values are
 * printed beside their bars so the chart reads without a scale.
 */
export function barChart(bars: Bar[], unit: string, width = 40): string[] {
  const max = Math.max(...bars.map((b) => b.value), 0);
  const labelWidth = Math.max(...bars.map((b) => b.label.length), 0);
  const eighths = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  return bars.map((b) => {
    const cells = max > 0 ? (b.value / max) * width : 0;
    const full = Math.floor(cells);
    const bar = '█'.repeat(full) + eighths[Math.round((cells - full) * 7)]!;
    return `${b.label.padEnd(labelWidth)}  ${bar.padEnd(width + 1)} ${b.value.toLocaleString('en-US')} ${unit}`;
  });
}

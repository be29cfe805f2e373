import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Metric {
  value: number;
  unit: string;
}

/**
 * Collects a benchmark's figures. stdout carries only result lines (`metric …`, `ratio …`, `note …`), so
 * checks can grep them; everything else goes to stderr.
 */
export class Report {
  readonly metrics: Record<string, Metric> = {};
  readonly ratios: Record<string, number> = {};
  readonly notes: string[] = [];
  /** Per-phase details (settings, spreads, verification counts) that only go to the JSON file. */
  readonly details: Record<string, unknown> = {};

  metric(name: string, value: number, unit: string): void {
    if (!Number.isFinite(value)) throw new Error(`metric ${name} is not a finite number: ${value}`);
    if (name in this.metrics) throw new Error(`metric ${name} reported twice`);
    this.metrics[name] = { value, unit };
    process.stdout.write(`metric ${name} ${formatValue(value)} ${unit}\n`);
  }

  ratio(name: string, value: number): void {
    if (!Number.isFinite(value)) throw new Error(`ratio ${name} is not a finite number: ${value}`);
    if (name in this.ratios) throw new Error(`ratio ${name} reported twice`);
    this.ratios[name] = value;
    process.stdout.write(`ratio ${name} ${value.toFixed(3)}\n`);
  }

  note(text: string): void {
    this.notes.push(text);
    process.stdout.write(`note ${text}\n`);
  }

  detail(key: string, value: unknown): void {
    this.details[key] = value;
  }

  write(path: string, header: Record<string, unknown>): void {
    mkdirSync(dirname(path), { recursive: true });
    const body = {
      ...header,
      metrics: this.metrics,
      ratios: this.ratios,
      notes: this.notes,
      details: this.details,
    };
    writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  }
}

/** Throughputs read best as integers; latencies need their fractions. */
function formatValue(value: number): string {
  if (Math.abs(value) >= 100) return String(Math.round(value));
  return String(Number(value.toPrecision(4)));
}

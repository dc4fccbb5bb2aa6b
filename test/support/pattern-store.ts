/**
 * An in-memory PatternStore (the session contract's port, functions/shared/tables/patterns.ts):
 * until the patterns table is merged in, the tests of pattern triage save and read patterns here.
 */
import type { PatternRecord, PatternStore } from '../../functions/shared/tables/patterns.ts';
import type { Triage } from '../../functions/shared/types.ts';

export class MemoryPatternStore implements PatternStore {
  readonly patterns = new Map<string, PatternRecord>();
  readonly triageSaves: { runId: string; patternId: string; triage: Triage }[] = [];

  async putAll(patterns: readonly PatternRecord[]): Promise<void> {
    for (const p of patterns) this.patterns.set(`${p.run_id}/${p.pattern_id}`, structuredClone(p));
  }

  async list(runId: string): Promise<PatternRecord[]> {
    return [...this.patterns.values()]
      .filter((p) => p.run_id === runId)
      .sort((a, b) => a.pattern_id.localeCompare(b.pattern_id))
      .map((p) => structuredClone(p));
  }

  async get(runId: string, patternId: string): Promise<PatternRecord | undefined> {
    const found = this.patterns.get(`${runId}/${patternId}`);
    return found && structuredClone(found);
  }

  async saveTriage(runId: string, patternId: string, triage: Triage): Promise<void> {
    const found = this.patterns.get(`${runId}/${patternId}`);
    if (found === undefined) throw new Error(`no pattern ${runId}/${patternId}`);
    this.patterns.set(`${runId}/${patternId}`, { ...found, triage: structuredClone(triage) });
    this.triageSaves.push({ runId, patternId, triage });
  }
}

import type { Context } from '../../context.js';
import type { ApplySection } from '../../services/apply.js';

/** The local target's sections between devices and rules: streams, functions, database, analytics. */
export function localSections(_ctx: Context): ApplySection[] {
  return [];
}

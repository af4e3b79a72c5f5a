/** `lowrank compress` (placeholder: registers nothing until the command is written). */
import type { Command } from 'commander';

/** Adds the command to the program. */
export function register(program: Command): void {
  void program;
}

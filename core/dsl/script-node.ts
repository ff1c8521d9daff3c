/** One node of a parsed workflow script. The root has type `root`, path `""` and line 0. */
export interface ScriptNode {
  /** The task type exactly as written (`sub_process` and `subprocess` stay distinct). */
  readonly type: string;
  /** The option after `type:` with comments removed and trimmed; `null` when nothing followed the colon. */
  readonly option: string | null;
  /** 1-based line of the node in its script (0 for the root). */
  readonly line: number;
  /** 1-based column where the type starts (0 for the root). */
  readonly column: number;
  /**
   * 1-based column where the option starts (after the colon and any blanks), so option errors point at it.
   * Set by the parser on every non-root node; absent on nodes built by hand.
   */
  readonly optionColumn?: number;
  /** `parent.path + "/" + index + "-" + type`; the root's is `""`. */
  readonly path: string;
  /** Index among its siblings. */
  readonly index: number;
  readonly parent: ScriptNode | undefined;
  readonly children: readonly ScriptNode[];
}

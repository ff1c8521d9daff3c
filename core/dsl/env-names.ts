/**
 * Environment variables a launch or an `env:` node may not set: names that make bash, sh or the dynamic loader (or
 * an interpreter a command is likely to start) run code or change how words are read before the definition's own
 * command runs. Commands run as `bash -c`, so `BASH_ENV=$(id)` alone would run `id` first. The list and its reasons
 * are in docs/security.md; names are case-sensitive, as the shell's are.
 */

/** Names refused exactly. */
const UNSAFE_ENV_NAMES: ReadonlySet<string> = new Set([
  // bash and sh start-up: files sourced, options turned on, prompts expanded (with command substitution) under xtrace.
  'BASH_ENV',
  'ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'PS0',
  'PS1',
  'PS2',
  'PS3',
  'PS4',
  'PROMPT_COMMAND',
  'BASH_XTRACEFD',
  'BASH_LOADABLES_PATH',
  // How the shell splits words, finds directories and expands globs.
  'IFS',
  'CDPATH',
  'GLOBIGNORE',
  'EXECIGNORE',
  // Interpreters a command may start, whose start-up options load or run code (NODE_OPTIONS=--import=data:...).
  'NODE_OPTIONS',
  'PYTHONSTARTUP',
  'PYTHONINSPECT',
  'PYTHONWARNINGS',
  'BROWSER',
  'PERL5OPT',
  'PERL5DB',
  'RUBYOPT',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  // glibc loads iconv modules from here.
  'GCONV_PATH',
]);

/** Name prefixes refused: exported bash functions, and the dynamic loaders of Linux and macOS. */
const UNSAFE_ENV_PREFIXES: readonly string[] = ['BASH_FUNC_', 'LD_', 'DYLD_'];

/** True when setting `name` could change how a shell or the loader starts. */
function isUnsafeEnvName(name: string): boolean {
  return UNSAFE_ENV_NAMES.has(name) || UNSAFE_ENV_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** What is wrong with an environment given to commands: refused names, and values holding NUL (which no process env can carry). */
export function envProblems(env: Readonly<Record<string, string>>): { name: string; message: string }[] {
  const problems: { name: string; message: string }[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (isUnsafeEnvName(name)) problems.push({ name, message: `${name} may not be set: it changes how the shell or the loader starts` });
    else if (value.includes('\0')) problems.push({ name, message: `the value of ${name} holds a NUL character` });
  }
  return problems;
}

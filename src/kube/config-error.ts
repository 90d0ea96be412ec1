/** A configuration problem, kept apart from the kubeconfig loader so that the library's
 *  public types do not reach into @kubernetes/client-node. */

/** The options a configuration problem can be about, named by each caller in its own words
 *  (a flag and its variable for the CLI, an option for the library). */
export type ConfigField = 'kubeconfig' | 'context';
export type FieldNames = (field: ConfigField) => string;

/** A configuration problem: one line for the user, exit 78. `message` names the options as
 *  the CLI's flags; `describe` lets another caller name them its own way. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly field: ConfigField | undefined;
  readonly #text: (names: FieldNames) => string;
  constructor(text: string | ((names: FieldNames) => string), field?: ConfigField) {
    const render = typeof text === 'string' ? () => text : text;
    super(render((f) => `--${f}`));
    this.#text = render;
    this.field = field;
  }
  describe(names: FieldNames): string {
    return this.#text(names);
  }
}

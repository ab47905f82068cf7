/** Where the generated man page and bash completion live in the package, relative to its root. */
export const MAN_PAGE = 'share/man/man1/execsentry.1';
export const BASH_COMPLETION = 'share/bash-completion/completions/execsentry';

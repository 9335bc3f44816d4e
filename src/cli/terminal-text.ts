/**
 * Text that reaches a terminal may carry names an attacker chose (a file a worker wrote, a run id in a
 * hostile ref, a reason from a worker). An escape sequence in it must not drive the terminal: every
 * control character except the line breaks and tabs a message is laid out with is shown as `�`.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_EXCEPT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const ALL_CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Keeps `\n` and `\t` (a message's own layout); replaces every other control character. */
export function terminalSafe(text: string): string {
  return text.replace(CONTROL_EXCEPT_LAYOUT, '\ufffd');
}

/** For one table cell: whitespace runs become one space, then every control character is replaced. */
export function terminalSafeLine(text: string): string {
  return text.replace(/\s+/g, ' ').replace(ALL_CONTROL, '\ufffd');
}

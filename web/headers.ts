/**
 * Headers on every response of the API and the dashboard. The Content-Security-Policy allows
 * scripts, styles and connections from the dashboard's own origin only: no inline script or
 * style, no other site's code, no framing. Whatever text reached a page (packet fields, rule
 * titles, reasons) could not run even if it were ever put into it as markup.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

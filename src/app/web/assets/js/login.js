// Login form: passes the query string's `next` (a path on this server) along with
// the token, and says "wrong token" after a failed attempt (?failed=1).

const params = new URLSearchParams(location.search);
const next = params.get('next');
if (next && next.startsWith('/') && !next.startsWith('//')) {
  document.getElementById('next').value = next;
}
if (params.get('failed')) {
  document.getElementById('failed').hidden = false;
}

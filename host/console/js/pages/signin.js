// Sign-in: the admin token is sent once, to be traded for a session cookie, and the
// input is cleared whatever the answer; the page keeps no copy.

import { signIn } from '../api.js';
import { errorBox, field, fill, h } from '../dom.js';

export function renderSignIn(main, done) {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const result = h('div', { class: 'result', 'aria-live': 'assertive' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'payhost console'),
    h('p', {}, 'Sign in with the admin token (the value of the variable named by admin.token_env).'),
    field('Admin token', token),
    button,
    result,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = token.value;
    token.value = '';
    button.disabled = true;
    fill(result);
    try {
      await signIn(value);
      done();
    } catch (e) {
      fill(result, errorBox(e, 'Sign-in refused'));
      token.focus();
    } finally {
      button.disabled = false;
    }
  });
  fill(main, form);
  token.focus();
}

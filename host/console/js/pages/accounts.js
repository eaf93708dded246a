// Accounts: find one by id, see its balance and history, and credit or debit it. A
// money movement needs a reason and carries an idempotency key the page generates;
// the operator reviews what will happen before it is sent. The key stays the same
// until a movement succeeds (or the operator asks for a new one), so sending again
// after a lost answer cannot move the money twice.

import { api, newConsoleId, seg } from '../api.js';
import { errorBox, facts, field, fill, h, okBox, table, timeSecs } from '../dom.js';

const HISTORY_LIMIT = 50;
const AMOUNT = /^\d+(\.\d+)?$/;

function newKey() {
  return newConsoleId();
}

export async function renderAccounts(main, args) {
  const id = args[0] || '';
  const input = h('input', { type: 'text', name: 'account', value: id, required: true, spellcheck: 'false', autocomplete: 'off' });
  const find = h(
    'form',
    { class: 'inline-form', role: 'search', 'aria-label': 'Find an account' },
    field('Account id', input),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Find')),
  );
  find.addEventListener('submit', (event) => {
    event.preventDefault();
    const wanted = input.value.trim();
    if (wanted) location.hash = `#/accounts/${encodeURIComponent(wanted)}`;
  });
  const view = h('div', {});
  fill(main, h('h1', {}, 'Accounts'), find, view);
  if (id) await showAccount(view, id);
  else input.focus();
}

async function showAccount(view, id) {
  const summary = h('section', { class: 'card', 'aria-labelledby': 'account-title' });
  const history = h('section', { class: 'card', 'aria-label': 'History' });
  const mover = moneyForm(id, () => load());
  fill(view, summary, mover.el, history);

  async function load() {
    let account = null;
    try {
      account = await api.get(`/accounts/${seg(id)}`);
      fill(
        summary,
        h('h2', { id: 'account-title' }, `Account ${id}`),
        facts(
          [
            ['Balance', `${account.balance} ${account.currency}`],
            ['Currency', account.currency],
            ['Overdraft limit', `${account.overdraft_limit} ${account.currency}`],
          ],
          { 'data-testid': 'account-facts' },
        ),
      );
    } catch (e) {
      fill(summary, h('h2', { id: 'account-title' }, `Account ${id}`), errorBox(e, 'Could not read the account'),
        e.status === 404 ? h('p', {}, 'A credit with a currency opens it.') : null);
    }
    mover.setAccount(account);
    try {
      const answer = await api.get(`/accounts/${seg(id)}/transactions?limit=${HISTORY_LIMIT}`);
      const rows = answer.entries.map((e) => [timeSecs(e.at), e.kind, `${e.amount} ${e.currency}`, `${e.balance_after} ${e.currency}`, e.reference, h('code', {}, e.transaction_id)]);
      fill(history, table(`History of ${id}, newest first (up to ${HISTORY_LIMIT})`, ['Time', 'Kind', 'Amount', 'Balance after', 'Reason', 'Transaction'], rows, { class: 'history' }));
    } catch (e) {
      fill(history, errorBox(e, 'Could not read the history'));
    }
  }
  await load();
}

function moneyForm(id, reload) {
  let account = null;
  let key = newKey();
  const credit = h('input', { type: 'radio', name: 'direction', value: 'credit', id: 'direction-credit', checked: true });
  const debit = h('input', { type: 'radio', name: 'direction', value: 'debit', id: 'direction-debit' });
  const amount = h('input', { type: 'text', name: 'amount', inputmode: 'decimal', required: true, autocomplete: 'off', placeholder: '300.00' });
  const currency = h('input', { type: 'text', name: 'currency', autocomplete: 'off', placeholder: 'RUB', maxlength: '8' });
  const reason = h('input', { type: 'text', name: 'reason', required: true, autocomplete: 'off', placeholder: 'ticket number and why' });
  const keyInput = h('input', { type: 'text', name: 'idempotency_key', readonly: true, value: key });
  const newKeyButton = h('button', { type: 'button', class: 'secondary' }, 'New key');
  const review = h('button', { type: 'submit', class: 'primary' }, 'Review');
  const problem = h('div', { class: 'result', 'aria-live': 'assertive' });
  const confirmArea = h('div', {});
  // Takes the focus once the confirmation panel (and its button) is gone.
  const result = h('div', { class: 'result', 'aria-live': 'polite', tabindex: '-1' });

  newKeyButton.addEventListener('click', () => setKey(newKey()));
  function setKey(k) {
    key = k;
    keyInput.value = k;
  }

  const form = h(
    'form',
    { class: 'money', 'aria-labelledby': 'money-title' },
    h('h2', { id: 'money-title' }, 'Credit or debit'),
    h(
      'fieldset',
      { class: 'direction' },
      h('legend', {}, 'Direction'),
      h('label', { for: credit.id }, credit, ' Credit (add money)'),
      h('label', { for: debit.id }, debit, ' Debit (take money)'),
    ),
    h('div', { class: 'row' }, field('Amount', amount, 'A decimal such as 300.00'), field('Currency', currency, 'Needed only to open a new account')),
    field('Reason', reason, 'Recorded as the entry’s reference'),
    h('div', { class: 'row' }, field('Idempotency key', keyInput, 'Generated by this page; repeating with the same key moves no money twice'), h('div', { class: 'buttons end' }, newKeyButton)),
    h('div', { class: 'buttons' }, review),
    problem,
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    fill(result);
    const ask = {
      direction: debit.checked ? 'debit' : 'credit',
      amount: amount.value.trim(),
      currency: currency.value.trim().toUpperCase() || (account && account.currency) || '',
      reason: reason.value.trim(),
      key,
    };
    const wrong = [];
    if (!AMOUNT.test(ask.amount) || Number(ask.amount) === 0) wrong.push('Amount must be a positive decimal such as 300.00.');
    if (!ask.reason) wrong.push('Give a reason.');
    if (!ask.currency && ask.direction === 'credit') wrong.push('This account does not exist yet: give its currency to open it.');
    if (wrong.length) {
      fill(problem, h('div', { class: 'error', role: 'alert' }, wrong.map((w) => h('p', {}, w))));
      return;
    }
    fill(problem);
    showConfirm(ask);
  });

  function showConfirm(ask) {
    const verb = ask.direction === 'credit' ? 'Credit' : 'Debit';
    const confirm = h('button', { type: 'button', class: 'primary danger' }, `Confirm ${ask.direction}`);
    const back = h('button', { type: 'button', class: 'secondary' }, 'Back');
    const panel = h(
      'section',
      { class: 'confirm', role: 'alertdialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
      h('h3', { id: 'confirm-title' }, `${verb} ${ask.amount} ${ask.currency} ${ask.direction === 'credit' ? 'to' : 'from'} account ${id}?`),
      h('div', { id: 'confirm-text' }, facts([
        ['Reason', ask.reason],
        ['Idempotency key', ask.key],
      ])),
      h('div', { class: 'buttons' }, confirm, back),
    );
    back.addEventListener('click', () => {
      fill(confirmArea);
      review.focus();
    });
    confirm.addEventListener('click', async () => {
      confirm.disabled = true;
      back.disabled = true;
      const body = { amount: ask.amount, reference: ask.reason, idempotency_key: ask.key };
      if (ask.currency) body.currency = ask.currency;
      try {
        const { answer, requestId } = await api.act('POST', `/accounts/${seg(id)}/${ask.direction}`, body);
        fill(confirmArea);
        fill(result, okBox(
          h('p', {}, `${verb} of ${ask.amount} ${ask.currency} done: balance now ${answer.account.balance} ${answer.account.currency}.`),
          facts([['Transaction', answer.entry.transaction_id], ['Idempotency key', ask.key], ['Request id', h('code', { 'data-testid': 'request-id' }, requestId)]]),
        ));
        amount.value = '';
        reason.value = '';
        setKey(newKey());
      } catch (e) {
        fill(confirmArea);
        // The key is kept: sending the same movement again after a lost answer is safe.
        fill(result, errorBox(e, `${verb} refused`));
      }
      result.focus();
      await reload();
    });
    fill(confirmArea, panel);
    confirm.focus();
  }

  const el = h('section', { class: 'card' }, form, confirmArea, result);
  return {
    el,
    setAccount(a) {
      account = a;
      currency.placeholder = a ? a.currency : 'RUB';
    },
  };
}

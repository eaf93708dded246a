// Start-up and navigation: the sign-in page until a session exists, then one page per
// concern chosen by the URL's hash (#/plugins, #/accounts/ID, #/jobs/deliveries,
// #/audit), so every view can be bookmarked and the back button works.

import { resume, signOut, whenSignedOut } from './api.js';
import { errorBox, fill, h } from './dom.js';
import { renderSignIn } from './pages/signin.js';
import { renderPlugins } from './pages/plugins.js';
import { renderAccounts } from './pages/accounts.js';
import { renderJobs } from './pages/jobs.js';
import { renderAudit } from './pages/audit.js';

const pages = [
  { path: 'plugins', title: 'Plugins', render: renderPlugins },
  { path: 'accounts', title: 'Accounts', render: renderAccounts },
  { path: 'jobs', title: 'Jobs', render: renderJobs },
  { path: 'audit', title: 'Audit trail', render: renderAudit },
];

const root = document.getElementById('app');
let signedIn = false;
// Pages that poll (charts, counters) stop when the page is left.
let leavePage = () => {};

function currentRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const page = pages.find((p) => p.path === parts[0]) || pages[0];
  return { page, args: parts.slice(1).filter((p) => p !== '') };
}

function shell(route) {
  const nav = h(
    'nav',
    { 'aria-label': 'Console sections' },
    h('ul', {}, pages.map((p) => h('li', {}, h('a', { href: `#/${p.path}`, 'aria-current': p === route.page ? 'page' : false }, p.title)))),
  );
  const signOutButton = h('button', { type: 'button', class: 'secondary', onclick: doSignOut }, 'Sign out');
  return [
    h('a', { class: 'skip', href: '#main', onclick: skipToContent }, 'Skip to content'),
    h('header', { class: 'top' }, h('p', { class: 'brand' }, 'payhost console'), nav, signOutButton),
    h('main', { id: 'main', tabindex: '-1' }),
  ];
}

// The hash names the page, so the skip link moves focus itself instead of navigating.
function skipToContent(event) {
  event.preventDefault();
  root.querySelector('main').focus();
}

async function show() {
  leavePage();
  leavePage = () => {};
  if (!signedIn) {
    fill(root, h('main', { id: 'main', tabindex: '-1' }));
    renderSignIn(root.querySelector('main'), () => {
      signedIn = true;
      show();
    });
    return;
  }
  const route = currentRoute();
  document.title = `${route.page.title} · payhost console`;
  fill(root, shell(route));
  const main = root.querySelector('main');
  try {
    leavePage = (await route.page.render(main, route.args)) || (() => {});
  } catch (e) {
    main.append(errorBox(e, `Could not show ${route.page.title}`));
  }
}

async function doSignOut() {
  try {
    await signOut();
  } catch {
    // Signed out either way: the session is dropped on this side.
  }
  signedIn = false;
  show();
}

whenSignedOut(() => {
  signedIn = false;
  show();
});

window.addEventListener('hashchange', show);

async function start() {
  try {
    signedIn = await resume();
  } catch (e) {
    fill(root, h('main', { id: 'main' }, errorBox(e, 'The console could not reach the host')));
    return;
  }
  show();
}

start();

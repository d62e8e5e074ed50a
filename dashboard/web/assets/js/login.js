// The sign-in page.
import './theme.js';
import {post, ApiError} from './api.js';

const form = document.getElementById('login-form');
const errBox = document.getElementById('login-error');
const button = document.getElementById('login-submit');

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  errBox.hidden = true;
  const email = form.email.value.trim();
  const password = form.password.value;
  if (!email || !password) {
    errBox.textContent = 'Enter your email and password.';
    errBox.hidden = false;
    return;
  }
  button.disabled = true;
  try {
    await post('/api/auth/login', {email, password});
    location.assign(form.dataset.next || '/app');
  } catch (err) {
    errBox.textContent = err instanceof ApiError ? err.message : 'The server cannot be reached; try again.';
    errBox.hidden = false;
    form.password.select();
  } finally {
    button.disabled = false;
  }
});

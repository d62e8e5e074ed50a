// Attention for new conversations and messages: a short sound made with
// WebAudio (no audio file) and a browser notification when the tab is not
// in front. Browsers allow both only after a user gesture, so unlock()
// runs on the first click.

let audio = null;

export function unlock() {
  if (!audio && window.AudioContext) {
    try { audio = new AudioContext(); } catch { audio = null; }
  }
  if (audio && audio.state === 'suspended') audio.resume().catch(() => {});
}

document.addEventListener('pointerdown', unlock, {once: true});
document.addEventListener('keydown', unlock, {once: true});

// beep plays a short tone and reports whether it could (the page has had
// a user gesture and the browser lets it play sound).
export function beep(kind = 'message') {
  if (!audio || audio.state !== 'running') return false;
  const now = audio.currentTime;
  const tones = kind === 'conversation' ? [660, 880] : [740];
  tones.forEach((f, i) => {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = f;
    gain.gain.setValueAtTime(0.0001, now + i * 0.14);
    gain.gain.exponentialRampToValueAtTime(0.15, now + i * 0.14 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.14 + 0.13);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + i * 0.14);
    osc.stop(now + i * 0.14 + 0.14);
  });
  return true;
}

export function notificationsState() {
  if (!('Notification' in window)) return 'unsupported';
  return Notification.permission;
}

export async function askNotifications() {
  if (!('Notification' in window)) return 'unsupported';
  return Notification.requestPermission();
}

// notify shows a system notification when the page is hidden or unfocused;
// the body is plain text (notifications never render HTML).
export function notify(title, body, onClick) {
  if (notificationsState() !== 'granted' || (document.visibilityState === 'visible' && document.hasFocus())) return;
  try {
    const n = new Notification(title, {body: (body || '').slice(0, 180), tag: title});
    n.onclick = () => { window.focus(); if (onClick) onClick(); n.close(); };
  } catch (err) {
    console.warn('notification failed', err);
  }
}

// Small conveniences of the admin app; every page works without this file (CSP: no
// inline script). A <select class="autosubmit"> submits its form when changed.
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.classList.contains("autosubmit") && target.form) {
    target.form.requestSubmit();
  }
});

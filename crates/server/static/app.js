// LangGuard's only script of its own (the Content-Security-Policy allows no inline script):
// a form with data-confirm asks before it submits.
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

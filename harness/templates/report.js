// A cell (or a point of the timeline) opens its dialog: click, or Enter / Space when focused.
// Escape closes it (the browser's own), as do the Close button and a click on the backdrop.
function openDetails(element) {
  const dialog = document.getElementById(element.dataset.dialog);
  if (dialog && !dialog.open) {
    dialog.showModal();
  }
}
document.addEventListener("click", (event) => {
  const element = event.target.closest("[data-dialog]");
  if (element) {
    openDetails(element);
  }
});
document.addEventListener("keydown", (event) => {
  if ((event.key === "Enter" || event.key === " ") && event.target.matches("[data-dialog]")) {
    event.preventDefault();
    openDetails(event.target);
  }
});
for (const dialog of document.querySelectorAll("dialog.details")) {
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) {
      dialog.close();
    }
  });
}

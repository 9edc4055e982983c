// Builds the oneDNN addon at install time. A failed build is not a failed install: the
// library falls back to the TypeScript reference backend and says what to install.
console.log('resnet-ts: native addon build is not wired yet');

// MathJax configuration for pymdownx.arithmatex (generic mode). The MathJax script itself is optional:
// offline, formulas stay readable as TeX source.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
};

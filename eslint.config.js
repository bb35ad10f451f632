// ESLint for the pages' own scripts (make lint): the recommended rules, with the globals the
// pages give each script. Each page loads its scripts as classic scripts in order (no modules):
// the vendored libraries (Leaflet, ECharts), Django's JavaScript catalog (gettext…) and our
// common/minqing.js come first, and a page's script may define one global of its own.
const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  {
    files: ["mapserver/static/mapserver/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: {
        ...globals.browser,
        L: "readonly",
        echarts: "readonly",
        gettext: "readonly",
        ngettext: "readonly",
        interpolate: "readonly",
        Minqing: "writable",
      },
    },
    rules: {
      ...js.configs.recommended.rules,
    },
  },
  {
    files: ["mapserver/static/mapserver/grid/sw.js"],
    languageOptions: { globals: { ...globals.serviceworker } },
  },
];

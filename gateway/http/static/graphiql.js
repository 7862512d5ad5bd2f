// Starts GraphiQL on the page gateway/http/graphiql.py serves, after the UMD builds in vendor/ have set the globals
// React, ReactDOM, GraphiQL and GraphiQLPluginExplorer. No inline script: the settings are #graphiql's data-config.
(function () {
  "use strict";
  var container = document.getElementById("graphiql");
  var config = JSON.parse(container.dataset.config);
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var props = {
    // the endpoint is the page's own URL: a browser's GET /graphql shows this page, POST /graphql answers
    fetcher: GraphiQL.createFetcher({ url: window.location.origin + window.location.pathname }),
    plugins: [explorer],
    defaultQuery: config.query, // the first tab's query, until the browser has kept tabs of its own
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
  };
  if (config.headers) {
    props.headers = config.headers;
    props.defaultHeaders = config.headers; // new tabs get them too
    props.defaultEditorToolsVisibility = "headers";
  }
  ReactDOM.createRoot(container).render(React.createElement(GraphiQL, props));

  // GraphiQL 4's `visiblePlugin` prop marks a plugin visible but leaves its pane collapsed; its sidebar
  // button opens both, so the explorer is opened by that button once GraphiQL has drawn it.
  if (config.plugin === "explorer") {
    var label = "Show " + explorer.title;
    var open = function () {
      var button = container.querySelector('.graphiql-sidebar button[aria-label="' + label + '"]');
      if (button) {
        button.click();
      } else {
        window.requestAnimationFrame(open);
      }
    };
    open();
  }
})();

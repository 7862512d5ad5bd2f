// Starts GraphiQL on the page gateway/http/graphiql.py serves, after the UMD builds in vendor/ have set the globals
// React, ReactDOM, GraphiQL and GraphiQLPluginExplorer. No inline script: the settings are #graphiql's data-config.
// The first view is the example query in an editor as wide as GraphiQL gives it, the keyboard left where the
// browser puts it; the explorer is one click away (the sidebar's "Show GraphiQL Explorer").
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

  // The explorer focuses every argument input it draws (graphiql-explorer's AbstractArgView, meant for the
  // argument just ticked), so opening its pane on a query with arguments would put the keyboard in the last
  // one drawn (the example's perPage, its text selected: typing would change the page size) and scroll the
  // pane to it. Between a click on the button that opens the pane and the person's next click or key, the
  // focus is given back to that button and the pane shown from its top.
  var showExplorer = '.graphiql-sidebar button[aria-label="Show ' + explorer.title + '"]';
  var opener = null;
  document.addEventListener(
    "pointerdown",
    function () {
      opener = null;
    },
    true
  );
  document.addEventListener(
    "keydown",
    function () {
      opener = null;
    },
    true
  );
  document.addEventListener(
    "click",
    function (event) {
      opener = event.target.closest(showExplorer); // before GraphiQL's own handler draws the pane
    },
    true
  );
  container.addEventListener("focusin", function (event) {
    var pane = event.target.closest(".graphiql-plugin");
    if (opener && pane && event.target !== opener) {
      opener.focus();
      for (var box = event.target; box && box !== pane.parentNode; box = box.parentNode) {
        box.scrollTop = 0;
      }
    }
  });
})();

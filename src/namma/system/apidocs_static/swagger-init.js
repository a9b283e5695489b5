// Starts Swagger UI on /api/docs (a file, not an inline script: see kit/security_headers.py).
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  var unsafe = { POST: 1, PUT: 1, PATCH: 1, DELETE: 1 };

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : null;
  }

  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    // A signed-in browser sends its session cookie; unsafe requests then need the CSRF token
    // (a Bearer token pasted under "Authorize" needs none).
    requestInterceptor: function (request) {
      var csrf = cookie("csrf_token");
      if (csrf && unsafe[(request.method || "GET").toUpperCase()]) {
        request.headers["X-CSRF-Token"] = csrf;
      }
      return request;
    },
  });
})();

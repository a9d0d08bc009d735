pytest_plugins = ["langgraph_opencode.testing.pytest_plugin"]

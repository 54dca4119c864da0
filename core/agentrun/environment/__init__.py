"""The email research task: tools, the environment that runs one episode, its reward and the answer judge."""
